"""Downsampling on InfluxDB: the partial aggregates of a window, and the bookkeeping
that rolls raw points up into ``outpost_rollup_1m`` / ``outpost_rollup_1h`` and redoes
the hours that late writes touched (see the package docstring)."""

# InfluxQL is assembled from ident()/literal()-escaped names and values and integers only.
# ruff: noqa: S608

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from outpost.telemetry.influx_store.client import InfluxClient, InfluxError
from outpost.telemetry.influx_store.syntax import (
    META,
    RESERVED_PREFIX,
    ROLLUPS,
    any_of,
    between,
    bodies,
    float_field,
    floor,
    ident,
    sources,
    tag_value,
)
from outpost.telemetry.store import HOUR_NS, NS_PER_SECOND, Aggregate

log = logging.getLogger(__name__)

#: Dirty lines this much older than the cursor are read again: a write stamped before
#: the cursor may still have been in flight when the cursor was taken.
MARKER_GRACE_NS: Final = 60 * NS_PER_SECOND
#: Dirty lines older than this below the cursor are deleted (1.x only) when the
#: watermark moves.
MARKER_KEEP_NS: Final = 24 * HOUR_NS
#: How many hours one downsampling query reads.
ROLLUP_CHUNK_HOURS: Final = 6
PARTIALS: Final = ("min", "max", "sum", "count", "first", "last")


@dataclass(slots=True)
class Partial:
    """The partial aggregates of one window, combinable with an adjacent later one."""

    min: float
    max: float
    sum: float
    count: float
    first: float
    last: float

    def then(self, later: Partial) -> None:
        """Fold in ``later``, whose points all come after this one's."""
        self.min = min(self.min, later.min)
        self.max = max(self.max, later.max)
        self.sum += later.sum
        self.count += later.count
        self.last = later.last

    def copy(self) -> Partial:
        return Partial(self.min, self.max, self.sum, self.count, self.first, self.last)

    def value(self, aggregate: Aggregate) -> float:
        if aggregate == "mean":
            return self.sum / self.count
        result: float = getattr(self, aggregate)
        return result

    def fields(self) -> str:
        return ",".join(f"{name}={float_field(getattr(self, name))}" for name in PARTIALS)


def rollup(
    client: InfluxClient, start_ns: int, end_ns: int, metrics: list[str], where: str | None
) -> int:
    """Compute and write the 1-minute and 1-hour rollups of [start, end), ``start``
    at an hour (the 1-hour row of the hour ``end`` cuts covers the minutes before)."""
    partials = ", ".join(f"{name}(value)" for name in PARTIALS)
    written = 0
    chunk = ROLLUP_CHUNK_HOURS * HOUR_NS
    for chunk_start in range(start_ns, end_ns, chunk):
        chunk_end = min(end_ns, chunk_start + chunk)
        condition = between(chunk_start, chunk_end)
        if where:
            condition = f"{where} AND {condition}"
        q = (
            f"SELECT {partials} FROM {sources(metrics)} WHERE {condition}"
            f" GROUP BY time(1m), {ident('org_id')}, {ident('asset_id')} fill(none)"
        )
        lines: list[str] = []
        for rows in client.select(q):
            org_id, asset_id = rows.tags.get("org_id", ""), rows.tags.get("asset_id", "")
            if not org_id or not asset_id:
                continue
            tags = (
                f"asset_id={tag_value(asset_id)},metric={tag_value(rows.name)},"
                f"org_id={tag_value(org_id)}"
            )
            hours: dict[int, Partial] = {}
            for row in rows.values:
                if not row[4]:
                    continue
                minute = Partial(*(float(v) for v in row[1:]))
                lines.append(f"{ROLLUPS['1m']},{tags} {minute.fields()} {int(row[0])}")
                hour = floor(int(row[0]), HOUR_NS)
                if hour in hours:
                    hours[hour].then(minute)
                else:
                    hours[hour] = minute.copy()
            lines += [
                f"{ROLLUPS['1h']},{tags} {partial.fields()} {hour}"
                for hour, partial in hours.items()
            ]
        for body in bodies(lines):
            client.write_body(body)
        written += len(lines)
    return written


def catch_up(client: InfluxClient, watermark: int, target: int, cursor: int) -> int:
    """Roll up [watermark, target) and redo every hour below ``watermark`` that a
    dirty line written since ``cursor`` names; move the state on."""
    # Read the dirty lines before the raw points, so that a late write landing
    # while the minutes are read is seen again next time.
    late, new_cursor = _dirty_since(client, max(0, cursor - MARKER_GRACE_NS))
    metrics = list_metrics(client)
    written = 0
    if metrics and target > watermark:
        start = watermark or _earliest(client, metrics, target)
        # From the start of the hour, so that its 1-hour row covers every minute.
        written += rollup(client, floor(start, HOUR_NS), target, metrics, None)
    by_hour: dict[int, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for org_id, metric, hour in late:
        if hour < watermark:
            by_hour[hour][0].add(org_id)
            by_hour[hour][1].add(metric)
    for hour, (orgs, hour_metrics) in sorted(by_hour.items()):
        names = [metric for metric in metrics if metric in hour_metrics]
        if names:
            where = any_of("org_id", sorted(orgs))
            written += rollup(client, hour, min(hour + HOUR_NS, watermark), names, where)
    new_cursor = max(cursor, new_cursor)
    if (target, new_cursor) != (watermark, cursor):
        client.write_body(
            f"{META},kind=state watermark={target}i,cursor={new_cursor}i {target}".encode()
        )
    if floor(target, HOUR_NS) > floor(watermark, HOUR_NS) and new_cursor > MARKER_KEEP_NS:
        _forget_markers(client, new_cursor - MARKER_KEEP_NS)
    return written


def _earliest(client: InfluxClient, metrics: list[str], before_ns: int) -> int:
    """The start of the hour of the earliest raw point before ``before_ns``."""
    earliest = before_ns
    for rows in client.select(
        f"SELECT first(value) FROM {sources(metrics)} WHERE time < {before_ns}"
    ):
        for time_ns, _ in rows.values:
            earliest = min(earliest, int(time_ns))
    return floor(earliest, HOUR_NS)


def _dirty_since(client: InfluxClient, since_ns: int) -> tuple[set[tuple[str, str, int]], int]:
    """The (org, metric, hour) buckets named by dirty lines after ``since_ns``."""
    buckets: set[tuple[str, str, int]] = set()
    latest = 0
    q = f"SELECT buckets FROM {ident(META)} WHERE {ident('kind')} = 'dirty' AND time > {since_ns}"
    for rows in client.select(q):
        for time_ns, text in rows.values:
            latest = max(latest, int(time_ns))
            if text:
                buckets.update((org, metric, int(hour)) for org, metric, hour in json.loads(text))
    return buckets, latest


def read_state(client: InfluxClient) -> tuple[int, int]:
    """(watermark, cursor): 0 when nothing was rolled up yet."""
    q = (
        f'SELECT last("watermark"), last("cursor") FROM {ident(META)}'
        f" WHERE {ident('kind')} = 'state'"
    )
    for rows in client.select(q):
        for _, watermark, cursor in rows.values:
            return int(watermark or 0), int(cursor or 0)
    return 0, 0


def _forget_markers(client: InfluxClient, before_ns: int) -> None:
    """Drop old dirty lines; InfluxDB 2.x/3.x refuse DELETE: their retention does it."""
    try:
        client.execute(
            f"DELETE FROM {ident(META)} WHERE {ident('kind')} = 'dirty' AND time < {before_ns}"
        )
    except InfluxError as exc:
        log.debug("old dirty markers kept: %s", exc)


def list_metrics(client: InfluxClient) -> list[str]:
    """Every raw measurement (metric) in the database."""
    names: list[str] = []
    for rows in client.select("SHOW MEASUREMENTS"):
        names += [row[0] for row in rows.values if not row[0].startswith(RESERVED_PREFIX)]
    return sorted(set(names))

"""The production telemetry store: InfluxDB through its v1 HTTP API only.

Only ``/write`` (line protocol, ``precision=ns``), ``/query`` (InfluxQL) and ``/ping``
are used, so InfluxDB 1.8+, 2.x (v1 compatibility API) and 3.x can serve it as far as
each implements that API (``CREATE DATABASE`` and ``DELETE`` are 1.x-only, so on 2.x
and 3.x the database must exist and deletion is left to their retention). Nothing runs
inside InfluxDB (no continuous queries, no ``SELECT INTO``): downsampling reads
aggregates and writes them back as points.

Schema, all in one database:

* raw points: measurement = metric name, tags ``org_id`` and ``asset_id``, one float
  field ``value``;
* rollups: ``outpost_rollup_1m`` / ``outpost_rollup_1h``, tags ``org_id``, ``asset_id``,
  ``metric``, float fields ``min max sum count first last`` at the bucket's start.
  Buckets are disjoint and time-ordered, so the first of several buckets is the first
  of the earliest one: no ``first_ns`` / ``last_ns`` is needed to combine them;
* bookkeeping: ``outpost_meta``. Every ``/write`` carries one or more *dirty* lines
  (``kind=dirty``) without a timestamp, so InfluxDB stamps them with its own clock,
  naming the (org, metric, hour) buckets the request touched. The ``kind=state`` point
  holds the watermark (everything before it is rolled up) and the marker cursor (dirty
  lines up to it have been acted on). ``downsample`` rolls up the complete hours between
  the old and the new watermark, then redoes every hour below the watermark that a dirty
  line written since the cursor (minus a grace period for writes still in flight) names:
  that is how a late point gets its buckets redone, whichever Outpost process wrote it.

Metric names starting with ``outpost_`` are reserved for these measurements.
"""

# InfluxQL is assembled from _ident()/_literal()-escaped names and values and integers only.
# ruff: noqa: S608

from __future__ import annotations

import functools
import json
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from outpost.telemetry.store import (
    HOUR_NS,
    MINUTE_NS,
    NS_PER_SECOND,
    RESOLUTION_NS,
    Across,
    Aggregate,
    Point,
    Reading,
    Resolution,
    Series,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

RESERVED_PREFIX: Final = "outpost_"
META: Final = "outpost_meta"
ROLLUPS: Final[dict[Resolution, str]] = {"1m": "outpost_rollup_1m", "1h": "outpost_rollup_1h"}
#: Dirty lines this much older than the cursor are read again: a write stamped before
#: the cursor may still have been in flight when the cursor was taken.
MARKER_GRACE_NS: Final = 60 * NS_PER_SECOND
#: Dirty lines older than this below the cursor are deleted (1.x only) when the
#: watermark moves.
MARKER_KEEP_NS: Final = 24 * HOUR_NS
#: A write body above this is sent in several requests (InfluxDB 1.x refuses 25 MB).
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: InfluxDB 1.x refuses string fields above 64 KiB.
MAX_MARKER_BYTES: Final = 32 * 1024
#: How many hours one downsampling query reads.
ROLLUP_CHUNK_HOURS: Final = 6
_PARTIALS: Final = ("min", "max", "sum", "count", "first", "last")


class InfluxError(Exception):
    """InfluxDB refused a request as malformed (a bug here, not an outage)."""


@dataclass(slots=True)
class _Partial:
    """The partial aggregates of one window, combinable with an adjacent later one."""

    min: float
    max: float
    sum: float
    count: float
    first: float
    last: float

    def then(self, later: _Partial) -> None:
        """Fold in ``later``, whose points all come after this one's."""
        self.min = min(self.min, later.min)
        self.max = max(self.max, later.max)
        self.sum += later.sum
        self.count += later.count
        self.last = later.last

    def copy(self) -> _Partial:
        return _Partial(self.min, self.max, self.sum, self.count, self.first, self.last)

    def value(self, aggregate: Aggregate) -> float:
        if aggregate == "mean":
            return self.sum / self.count
        result: float = getattr(self, aggregate)
        return result

    def fields(self) -> str:
        return ",".join(f"{name}={_float(getattr(self, name))}" for name in _PARTIALS)


@dataclass(frozen=True, slots=True)
class _Rows:
    """One series of a ``/query`` answer."""

    statement: int
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


# -- line protocol -------------------------------------------------------------------


def _check_name(kind: str, value: str) -> None:
    """Refuse what line protocol cannot carry the same way on InfluxDB 1.x, 2.x and 3.x."""
    if not value:
        raise ValueError(f"{kind} must not be empty")
    if "\\" in value or any(ord(char) < 32 or char == "\x7f" for char in value):
        raise ValueError(
            f"{kind} {value!r} cannot be stored in InfluxDB: backslashes and control "
            "characters are not portable in line protocol"
        )


def _measurement(name: str) -> str:
    return name.replace(",", "\\,").replace(" ", "\\ ")


def _tag(value: str) -> str:
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _float(value: float) -> str:
    """A line protocol float that reads back as exactly ``value``."""
    return repr(float(value))


def _line_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=65_536)
def _series_key(metric: str, asset_id: str, org_id: str) -> str:
    """The escaped ``measurement,tags`` of a raw point (the same few thousand repeat)."""
    _check_name("metric name", metric)
    if metric.startswith(RESERVED_PREFIX):
        raise ValueError(f"metric names starting with {RESERVED_PREFIX!r} are reserved")
    _check_name("org id", org_id)
    _check_name("asset id", asset_id)
    return f"{_measurement(metric)},asset_id={_tag(asset_id)},org_id={_tag(org_id)}"


def _point_line(point: Point) -> str:
    value = float(point.value)
    if not math.isfinite(value):
        raise ValueError(f"{point.metric} of {point.asset_id}: {value} is not a finite number")
    key = _series_key(point.metric, point.asset_id, point.org_id)
    return f"{key} value={value!r} {int(point.time_ns)}"


def _dirty_lines(buckets: Iterable[tuple[str, str, int]]) -> list[str]:
    """Lines naming ``buckets`` as (org, metric, hour start), stamped by InfluxDB."""
    lines: list[str] = []
    part: list[tuple[str, str, int]] = []
    size = 0
    for bucket in sorted(buckets):
        part.append(bucket)
        size += len(bucket[0]) + len(bucket[1]) + 30
        if size > MAX_MARKER_BYTES:
            lines.append(_dirty_line(len(lines), part))
            part, size = [], 0
    if part:
        lines.append(_dirty_line(len(lines), part))
    return lines


def _dirty_line(index: int, buckets: list[tuple[str, str, int]]) -> str:
    return f"{META},kind=dirty,part={index} buckets={_line_string(json.dumps(buckets))}"


# -- InfluxQL -------------------------------------------------------------------------


def _ident(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _any_of(tag: str, values: Iterable[str]) -> str:
    return "(" + " OR ".join(f"{_ident(tag)} = {_literal(value)}" for value in values) + ")"


def _sources(names: Iterable[str]) -> str:
    return ", ".join(_ident(name) for name in names)


def _between(start_ns: int, end_ns: int) -> str:
    return f"time >= {start_ns} AND time < {end_ns}"


def _floor(time_ns: int, step: int) -> int:
    return time_ns // step * step


def _ceil(time_ns: int, step: int) -> int:
    return -(-time_ns // step) * step


_TIERS: Final[dict[Resolution, list[Resolution]]] = {"raw": [], "1m": ["1m"], "1h": ["1h", "1m"]}


def _segments(
    start_ns: int, end_ns: int, resolution: Resolution, watermark: int
) -> list[tuple[Resolution, int, int]]:
    """[start, end) as consecutive (source, lo, hi) parts: whole buckets below the
    watermark from the coarsest rollup that fits (up to ``resolution``), raw points for
    the rest."""
    tiers = _TIERS[resolution]

    def split(lo: int, hi: int, rest: list[Resolution]) -> list[tuple[Resolution, int, int]]:
        if lo >= hi:
            return []
        if not rest:
            return [("raw", lo, hi)]
        size = RESOLUTION_NS[rest[0]]
        a, b = _ceil(lo, size), _floor(hi, size)
        if a >= b:
            return split(lo, hi, rest[1:])
        return [*split(lo, a, rest[1:]), (rest[0], a, b), *split(b, hi, rest[1:])]

    covered = max(start_ns, min(end_ns, watermark))
    parts = [*split(start_ns, covered, tiers), *split(covered, end_ns, [])]
    merged: list[tuple[Resolution, int, int]] = []
    for part in parts:
        if merged and merged[-1][0] == part[0] == "raw" and merged[-1][2] == part[1]:
            merged[-1] = ("raw", merged[-1][1], part[2])
        else:
            merged.append(part)
    return merged


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class InfluxTelemetryStore:
    """A :class:`~outpost.telemetry.store.TelemetryStore` on InfluxDB's v1 HTTP API.

    Thread-safe: one keep-alive ``httpx.Client`` is shared by every thread.
    ``transport`` is for tests (an ``httpx.MockTransport``).
    """

    def __init__(
        self,
        url: str,
        *,
        database: str,
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not database:
            raise ValueError("the InfluxDB database name must not be empty")
        self.url = url.rstrip("/")
        self.database = database
        self._client = httpx.Client(
            base_url=self.url,
            auth=httpx.BasicAuth(username, password) if username or password else None,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers={"User-Agent": "outpost-telemetry"},
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    # -- the protocol -----------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        lines = [_point_line(point) for point in points]
        buckets = {(p.org_id, p.metric, _floor(p.time_ns, HOUR_NS)) for p in points}
        body = "\n".join([*lines, *_dirty_lines(buckets)]).encode()
        if len(body) <= MAX_BODY_BYTES:
            self._write_body(body)
            return
        # Huge: each chunk carries the dirty lines of its own points.
        for chunk in self._chunks(lines, points):
            self._write_body(chunk)

    def query(self, query: SeriesQuery) -> list[Series]:
        asset_ids = _unique(query.asset_ids)
        metrics = _unique(query.metrics)
        if not asset_ids or not metrics or query.end_ns <= query.start_ns or query.limit <= 0:
            return []
        if query.every_ns is None:
            if query.resolution != "raw":
                raise ValueError("raw points (every_ns None) are read at resolution 'raw'")
            found = self._raw_points(query, asset_ids, metrics)
        else:
            if query.every_ns <= 0 or query.every_ns % RESOLUTION_NS[query.resolution]:
                raise ValueError("every_ns must be a positive multiple of the resolution")
            windows = self._windows(query, asset_ids, metrics)
            found = {
                key: [(time, partial.value(query.aggregate)) for time, partial in rows]
                for key, rows in windows.items()
            }
        return _assemble(found, asset_ids, metrics, query.across, query.limit)

    def latest(
        self, org_id: str, asset_ids: Sequence[str], metrics: Sequence[str] | None = None
    ) -> list[Reading]:
        assets = _unique(asset_ids)
        if not assets or (metrics is not None and not metrics):
            return []
        source = "/.*/" if metrics is None else _sources(_unique(metrics))
        q = (
            f"SELECT last(value) FROM {source} WHERE {_ident('org_id')} = {_literal(org_id)}"
            f" AND {_any_of('asset_id', assets)} GROUP BY {_ident('asset_id')}"
        )
        readings: dict[tuple[str, str], Reading] = {}
        for rows in self._select(q):
            if rows.name.startswith(RESERVED_PREFIX):
                continue
            asset_id = rows.tags.get("asset_id", "")
            for time_ns, value in rows.values:
                if value is not None:
                    key = (asset_id, rows.name)
                    readings[key] = Reading(asset_id, rows.name, int(time_ns), float(value))
        order = {asset_id: index for index, asset_id in enumerate(assets)}
        metric_order = {m: index for index, m in enumerate(_unique(metrics or ()))}
        return sorted(
            readings.values(),
            key=lambda r: (
                order.get(r.asset_id, len(order)),
                metric_order.get(r.metric, len(metric_order)),
                r.metric,
            ),
        )

    def delete_range(
        self, org_id: str, asset_ids: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> None:
        if end_ns <= start_ns or (asset_ids is not None and not asset_ids):
            return
        where = f"{_ident('org_id')} = {_literal(org_id)}"
        if asset_ids is not None:
            where += f" AND {_any_of('asset_id', _unique(asset_ids))}"
        # Raw points and rollups of the range; the rollup buckets cut by its ends are
        # dropped too and computed again from the raw points left in them.
        first_hour, end_hour = _floor(start_ns, HOUR_NS), _ceil(end_ns, HOUR_NS)
        statements = [f"DELETE WHERE {where} AND {_between(start_ns, end_ns)}"]
        statements += [
            f"DELETE FROM {_ident(name)} WHERE {where} AND {_between(first_hour, end_hour)}"
            for name in ROLLUPS.values()
        ]
        self._execute(";\n".join(statements))
        watermark = self._state()[0]
        edges = {first_hour, end_hour - HOUR_NS}
        metrics = self._metrics()
        for hour in sorted(edges):
            if hour < watermark and metrics:
                self._rollup(hour, hour + HOUR_NS, metrics, where)

    def apply_retention(self, org_id: str, raw_before_ns: int, rollups_before_ns: int) -> int:
        # Late points about to go still count in their rollups: redo their hours first.
        watermark, cursor = self._state()
        self._catch_up(watermark, watermark, cursor)
        where = f"{_ident('org_id')} = {_literal(org_id)}"
        metrics = self._metrics()
        counts: list[str] = []
        deletes: list[str] = []
        if metrics:
            raw = f"{where} AND time < {raw_before_ns}"
            counts.append(f"SELECT count(value) FROM {_sources(metrics)} WHERE {raw}")
            deletes += [f"DELETE FROM {_ident(metric)} WHERE {raw}" for metric in metrics]
        for resolution, name in ROLLUPS.items():
            # Only buckets wholly before rollups_before_ns.
            before = rollups_before_ns - RESOLUTION_NS[resolution] + 1
            counts.append(
                f'SELECT count("count") FROM {_ident(name)} WHERE {where} AND time < {before}'
            )
            deletes.append(f"DELETE FROM {_ident(name)} WHERE {where} AND time < {before}")
        dropped = 0
        for rows in self._select(";\n".join(counts)):
            dropped += sum(int(count) for _, count in rows.values if count is not None)
        self._execute(";\n".join(deletes))
        return dropped

    def downsample(self, until_ns: int) -> int:
        watermark, cursor = self._state()
        return self._catch_up(watermark, max(watermark, _floor(until_ns, MINUTE_NS)), cursor)

    def rolled_up_until(self) -> int:
        return self._state()[0]

    def close(self) -> None:
        self._client.close()

    # -- queries --------------------------------------------------------------------

    def _raw_points(
        self, query: SeriesQuery, asset_ids: list[str], metrics: list[str]
    ) -> dict[tuple[str, str], list[tuple[int, float]]]:
        q = (
            f"SELECT value FROM {_sources(metrics)} WHERE {self._scope(query, asset_ids)}"
            f" AND {_between(query.start_ns, query.end_ns)}"
            f" GROUP BY {_ident('asset_id')} LIMIT {query.limit}"
        )
        found: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        for rows in self._select(q):
            key = (rows.name, rows.tags.get("asset_id", ""))
            found[key] += [(int(t), float(v)) for t, v in rows.values if v is not None]
        return found

    def _windows(
        self, query: SeriesQuery, asset_ids: list[str], metrics: list[str]
    ) -> dict[tuple[str, str], list[tuple[int, _Partial]]]:
        """Each (metric, asset)'s windows as partial aggregates, rollups and raw combined."""
        assert query.every_ns is not None
        every = query.every_ns
        scope = self._scope(query, asset_ids)
        partials = ", ".join(f"{name}(value)" for name in _PARTIALS)
        group = f"GROUP BY time({every}ns), {_ident('asset_id')} fill(none)"

        def raw(start: int, end: int) -> str:
            return (
                f"SELECT {partials} FROM {_sources(metrics)} "
                f"WHERE {scope} AND {_between(start, end)} {group}"
            )

        rollup_partials = (
            'min("min"), max("max"), sum("sum"), sum("count"), first("first"), last("last")'
        )
        watermark = self._state()[0] if query.resolution != "raw" else 0
        statements: list[str] = []
        for source, lo, hi in _segments(query.start_ns, query.end_ns, query.resolution, watermark):
            if source == "raw":
                statements.append(raw(lo, hi))
            else:
                statements.append(
                    f"SELECT {rollup_partials} FROM {_ident(ROLLUPS[source])} WHERE {scope}"
                    f" AND {_any_of('metric', metrics)} AND {_between(lo, hi)}"
                    f" GROUP BY time({every}ns), {_ident('asset_id')}, {_ident('metric')}"
                    " fill(none)"
                )
        # Statements read consecutive time ranges: fold each one's windows into the
        # previous ones in statement order.
        by_statement: dict[int, dict[tuple[str, str], dict[int, _Partial]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for rows in self._select(";\n".join(statements)):
            metric = rows.tags.get("metric", rows.name)
            windows = by_statement[rows.statement][(metric, rows.tags.get("asset_id", ""))]
            for row in rows.values:
                if row[4]:  # count
                    windows[int(row[0])] = _Partial(*(float(v) for v in row[1:]))
        combined: dict[tuple[str, str], dict[int, _Partial]] = defaultdict(dict)
        for statement in sorted(by_statement):
            for key, windows in by_statement[statement].items():
                into = combined[key]
                for time_ns, partial in windows.items():
                    if time_ns in into:
                        into[time_ns].then(partial)
                    else:
                        into[time_ns] = partial
        return {key: sorted(windows.items()) for key, windows in combined.items()}

    @staticmethod
    def _scope(query: SeriesQuery, asset_ids: list[str]) -> str:
        return f"{_ident('org_id')} = {_literal(query.org_id)} AND {_any_of('asset_id', asset_ids)}"

    # -- downsampling ---------------------------------------------------------------

    def _rollup(self, start_ns: int, end_ns: int, metrics: list[str], where: str | None) -> int:
        """Compute and write the 1-minute and 1-hour rollups of [start, end), ``start``
        at an hour (the 1-hour row of the hour ``end`` cuts covers the minutes before)."""
        partials = ", ".join(f"{name}(value)" for name in _PARTIALS)
        written = 0
        chunk = ROLLUP_CHUNK_HOURS * HOUR_NS
        for chunk_start in range(start_ns, end_ns, chunk):
            chunk_end = min(end_ns, chunk_start + chunk)
            condition = _between(chunk_start, chunk_end)
            if where:
                condition = f"{where} AND {condition}"
            q = (
                f"SELECT {partials} FROM {_sources(metrics)} WHERE {condition}"
                f" GROUP BY time(1m), {_ident('org_id')}, {_ident('asset_id')} fill(none)"
            )
            lines: list[str] = []
            for rows in self._select(q):
                org_id, asset_id = rows.tags.get("org_id", ""), rows.tags.get("asset_id", "")
                if not org_id or not asset_id:
                    continue
                tags = f"asset_id={_tag(asset_id)},metric={_tag(rows.name)},org_id={_tag(org_id)}"
                hours: dict[int, _Partial] = {}
                for row in rows.values:
                    if not row[4]:
                        continue
                    minute = _Partial(*(float(v) for v in row[1:]))
                    lines.append(f"{ROLLUPS['1m']},{tags} {minute.fields()} {int(row[0])}")
                    hour = _floor(int(row[0]), HOUR_NS)
                    if hour in hours:
                        hours[hour].then(minute)
                    else:
                        hours[hour] = minute.copy()
                lines += [
                    f"{ROLLUPS['1h']},{tags} {partial.fields()} {hour}"
                    for hour, partial in hours.items()
                ]
            for body in _bodies(lines):
                self._write_body(body)
            written += len(lines)
        return written

    def _catch_up(self, watermark: int, target: int, cursor: int) -> int:
        """Roll up [watermark, target) and redo every hour below ``watermark`` that a
        dirty line written since ``cursor`` names; move the state on."""
        # Read the dirty lines before the raw points, so that a late write landing
        # while the minutes are read is seen again next time.
        late, new_cursor = self._dirty_since(max(0, cursor - MARKER_GRACE_NS))
        metrics = self._metrics()
        written = 0
        if metrics and target > watermark:
            start = watermark or self._earliest(metrics, target)
            # From the start of the hour, so that its 1-hour row covers every minute.
            written += self._rollup(_floor(start, HOUR_NS), target, metrics, None)
        by_hour: dict[int, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
        for org_id, metric, hour in late:
            if hour < watermark:
                by_hour[hour][0].add(org_id)
                by_hour[hour][1].add(metric)
        for hour, (orgs, hour_metrics) in sorted(by_hour.items()):
            names = [metric for metric in metrics if metric in hour_metrics]
            if names:
                where = _any_of("org_id", sorted(orgs))
                written += self._rollup(hour, min(hour + HOUR_NS, watermark), names, where)
        new_cursor = max(cursor, new_cursor)
        if (target, new_cursor) != (watermark, cursor):
            self._write_body(
                f"{META},kind=state watermark={target}i,cursor={new_cursor}i {target}".encode()
            )
        if _floor(target, HOUR_NS) > _floor(watermark, HOUR_NS) and new_cursor > MARKER_KEEP_NS:
            self._forget_markers(new_cursor - MARKER_KEEP_NS)
        return written

    def _earliest(self, metrics: list[str], before_ns: int) -> int:
        """The start of the hour of the earliest raw point before ``before_ns``."""
        earliest = before_ns
        for rows in self._select(
            f"SELECT first(value) FROM {_sources(metrics)} WHERE time < {before_ns}"
        ):
            for time_ns, _ in rows.values:
                earliest = min(earliest, int(time_ns))
        return _floor(earliest, HOUR_NS)

    def _dirty_since(self, since_ns: int) -> tuple[set[tuple[str, str, int]], int]:
        """The (org, metric, hour) buckets named by dirty lines after ``since_ns``."""
        buckets: set[tuple[str, str, int]] = set()
        latest = 0
        q = (
            f"SELECT buckets FROM {_ident(META)} WHERE {_ident('kind')} = 'dirty'"
            f" AND time > {since_ns}"
        )
        for rows in self._select(q):
            for time_ns, text in rows.values:
                latest = max(latest, int(time_ns))
                if text:
                    buckets.update(
                        (org, metric, int(hour)) for org, metric, hour in json.loads(text)
                    )
        return buckets, latest

    def _state(self) -> tuple[int, int]:
        """(watermark, cursor): 0 when nothing was rolled up yet."""
        q = (
            f'SELECT last("watermark"), last("cursor") FROM {_ident(META)}'
            f" WHERE {_ident('kind')} = 'state'"
        )
        for rows in self._select(q):
            for _, watermark, cursor in rows.values:
                return int(watermark or 0), int(cursor or 0)
        return 0, 0

    def _forget_markers(self, before_ns: int) -> None:
        """Drop old dirty lines; InfluxDB 2.x/3.x refuse DELETE: their retention does it."""
        try:
            self._execute(
                f"DELETE FROM {_ident(META)} WHERE {_ident('kind')} = 'dirty'"
                f" AND time < {before_ns}"
            )
        except InfluxError as exc:
            log.debug("old dirty markers kept: %s", exc)

    def _metrics(self) -> list[str]:
        """Every raw measurement (metric) in the database."""
        names: list[str] = []
        for rows in self._select("SHOW MEASUREMENTS"):
            names += [row[0] for row in rows.values if not row[0].startswith(RESERVED_PREFIX)]
        return sorted(set(names))

    # -- HTTP ------------------------------------------------------------------------

    def _chunks(self, lines: list[str], points: Sequence[Point]) -> Iterator[bytes]:
        chunk: list[str] = []
        buckets: set[tuple[str, str, int]] = set()
        size = 0
        for line, point in zip(lines, points, strict=True):
            chunk.append(line)
            buckets.add((point.org_id, point.metric, _floor(point.time_ns, HOUR_NS)))
            size += len(line) + 1
            if size >= MAX_BODY_BYTES // 2:
                yield "\n".join([*chunk, *_dirty_lines(buckets)]).encode()
                chunk, buckets, size = [], set(), 0
        if chunk:
            yield "\n".join([*chunk, *_dirty_lines(buckets)]).encode()

    def _write_body(self, body: bytes) -> None:
        self._ensure_database()
        params = {"db": self.database, "precision": "ns"}
        response = self._request("POST", "/write", params=params, content=body)
        if response.status_code == 404 and "database not found" in response.text:
            self._ready = False
            self._ensure_database()
            response = self._request("POST", "/write", params=params, content=body)
        if response.is_success:
            return
        message = _error_message(response)
        if response.status_code == 400:
            raise InfluxError(f"InfluxDB refused the write: {message}")
        raise StoreUnavailable(f"InfluxDB refused the write ({response.status_code}): {message}")

    def _select(self, q: str) -> Iterator[_Rows]:
        """Run read-only InfluxQL (GET), yielding every series of every statement."""
        self._ensure_database()
        params = {"db": self.database, "q": q, "epoch": "ns", "chunked": "true"}
        response = self._request("GET", "/query", params=params)
        for answer in _answers(response):
            for result in answer.get("results", []):
                error = result.get("error")
                if error:
                    if "database not found" in error:
                        continue
                    raise InfluxError(f"InfluxDB refused the query: {error}")
                for series in result.get("series", []):
                    yield _Rows(
                        int(result.get("statement_id", 0)),
                        series.get("name", ""),
                        series.get("tags") or {},
                        series.get("columns", []),
                        series.get("values", []),
                    )

    def _execute(self, q: str) -> None:
        """Run InfluxQL that changes something (POST)."""
        self._ensure_database()
        response = self._request("POST", "/query", params={"db": self.database}, data={"q": q})
        for answer in _answers(response):
            for result in answer.get("results", []):
                if result.get("error"):
                    raise InfluxError(f"InfluxDB refused {q.split()[0]}: {result['error']}")

    def _ensure_database(self) -> None:
        """``CREATE DATABASE`` once (idempotent on 1.x; 2.x and 3.x have no such thing:
        the bucket / database must exist or be created by the first write)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            response = self._request(
                "POST", "/query", data={"q": f"CREATE DATABASE {_ident(self.database)}"}
            )
            if not response.is_success:
                log.info(
                    "CREATE DATABASE %s refused (%s): %s",
                    self.database,
                    response.status_code,
                    _error_message(response),
                )
            self._ready = True

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        status = response.status_code
        if status in (429, 503):
            raise StoreOverloaded(
                f"InfluxDB is overloaded ({status}): {_error_message(response)}",
                retry_after=_retry_after(response, 1),
            )
        if status >= 500 or status in (401, 403):
            raise StoreUnavailable(
                f"InfluxDB answered {status}: {_error_message(response)}",
                retry_after=_retry_after(response, 5),
            )
        if status >= 400 and path == "/query":
            raise InfluxError(f"InfluxDB refused the query ({status}): {_error_message(response)}")
        return response


def _answers(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON objects of a (possibly chunked, one object per line) ``/query`` answer."""
    for line in response.text.splitlines():
        if line.strip():
            answer: dict[str, Any] = json.loads(line)
            if answer.get("error"):
                raise InfluxError(f"InfluxDB refused the query: {answer['error']}")
            yield answer


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:500]
    return str(body)[:500]


def _retry_after(response: httpx.Response, default: int) -> int:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else default


def _bodies(lines: list[str]) -> Iterator[bytes]:
    chunk: list[str] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line) + 1
        if size >= MAX_BODY_BYTES // 2:
            yield "\n".join(chunk).encode()
            chunk, size = [], 0
    if chunk:
        yield "\n".join(chunk).encode()


def _assemble(
    found: dict[tuple[str, str], list[tuple[int, float]]],
    asset_ids: list[str],
    metrics: list[str],
    across: Across | None,
    limit: int,
) -> list[Series]:
    """Series in metric order then ``asset_ids`` order, combined across assets if asked,
    at most ``limit`` points in all."""
    result: list[Series] = []
    budget = limit
    for metric in metrics:
        per_asset = [(a, found[(metric, a)]) for a in asset_ids if found.get((metric, a))]
        if across is not None:
            by_time: dict[int, list[float]] = defaultdict(list)
            for _, rows in per_asset:
                for time_ns, value in rows:
                    by_time[time_ns].append(value)
            rows = [(t, _combine(across, values)) for t, values in sorted(by_time.items())]
            per_series: list[tuple[str | None, list[tuple[int, float]]]] = [(None, rows)]
        else:
            per_series = [(a, rows) for a, rows in per_asset]
        for asset_id, rows in per_series:
            if budget <= 0:
                return result
            if not rows:
                continue
            rows = rows[:budget]
            budget -= len(rows)
            result.append(Series(asset_id, metric, [t for t, _ in rows], [v for _, v in rows]))
    return result


def _combine(across: Across, values: list[float]) -> float:
    if across == "sum":
        return sum(values)
    if across == "mean":
        return sum(values) / len(values)
    if across == "min":
        return min(values)
    return max(values)

"""The InfluxDB telemetry store itself: the ``TelemetryStore`` methods, and reading
series from raw points and rollups together (see the package docstring)."""

# InfluxQL is assembled from ident()/literal()-escaped names and values and integers only.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

import httpx

from outpost.telemetry.influx_store.client import InfluxClient
from outpost.telemetry.influx_store.rollups import (
    PARTIALS,
    Partial,
    catch_up,
    list_metrics,
    read_state,
    rollup,
)
from outpost.telemetry.influx_store.syntax import (
    MAX_BODY_BYTES,
    RESERVED_PREFIX,
    ROLLUPS,
    any_of,
    between,
    ceil,
    dirty_lines,
    floor,
    ident,
    literal,
    point_bodies,
    point_line,
    sources,
)
from outpost.telemetry.store import (
    HOUR_NS,
    MINUTE_NS,
    RESOLUTION_NS,
    Across,
    Point,
    Reading,
    Resolution,
    Series,
    SeriesQuery,
)

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
        a, b = ceil(lo, size), floor(hi, size)
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
        self._http = InfluxClient(
            self.url,
            database=database,
            username=username,
            password=password,
            timeout=timeout,
            transport=transport,
        )

    # -- the protocol -----------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        lines = [point_line(point) for point in points]
        buckets = {(p.org_id, p.metric, floor(p.time_ns, HOUR_NS)) for p in points}
        body = "\n".join([*lines, *dirty_lines(buckets)]).encode()
        if len(body) <= MAX_BODY_BYTES:
            self._http.write_body(body)
            return
        # Huge: each chunk carries the dirty lines of its own points.
        for chunk in point_bodies(lines, points):
            self._http.write_body(chunk)

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
        source = "/.*/" if metrics is None else sources(_unique(metrics))
        q = (
            f"SELECT last(value) FROM {source} WHERE {ident('org_id')} = {literal(org_id)}"
            f" AND {any_of('asset_id', assets)} GROUP BY {ident('asset_id')}"
        )
        readings: dict[tuple[str, str], Reading] = {}
        for rows in self._http.select(q):
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
        where = f"{ident('org_id')} = {literal(org_id)}"
        if asset_ids is not None:
            where += f" AND {any_of('asset_id', _unique(asset_ids))}"
        # Raw points and rollups of the range; the rollup buckets cut by its ends are
        # dropped too and computed again from the raw points left in them.
        first_hour, end_hour = floor(start_ns, HOUR_NS), ceil(end_ns, HOUR_NS)
        statements = [f"DELETE WHERE {where} AND {between(start_ns, end_ns)}"]
        statements += [
            f"DELETE FROM {ident(name)} WHERE {where} AND {between(first_hour, end_hour)}"
            for name in ROLLUPS.values()
        ]
        self._http.execute(";\n".join(statements))
        watermark = read_state(self._http)[0]
        edges = {first_hour, end_hour - HOUR_NS}
        metrics = list_metrics(self._http)
        for hour in sorted(edges):
            if hour < watermark and metrics:
                rollup(self._http, hour, hour + HOUR_NS, metrics, where)

    def apply_retention(self, org_id: str, raw_before_ns: int, rollups_before_ns: int) -> int:
        # Late points about to go still count in their rollups: redo their hours first.
        watermark, cursor = read_state(self._http)
        catch_up(self._http, watermark, watermark, cursor)
        where = f"{ident('org_id')} = {literal(org_id)}"
        metrics = list_metrics(self._http)
        counts: list[str] = []
        deletes: list[str] = []
        if metrics:
            raw = f"{where} AND time < {raw_before_ns}"
            counts.append(f"SELECT count(value) FROM {sources(metrics)} WHERE {raw}")
            deletes += [f"DELETE FROM {ident(metric)} WHERE {raw}" for metric in metrics]
        for resolution, name in ROLLUPS.items():
            # Only buckets wholly before rollups_before_ns.
            before = rollups_before_ns - RESOLUTION_NS[resolution] + 1
            counts.append(
                f'SELECT count("count") FROM {ident(name)} WHERE {where} AND time < {before}'
            )
            deletes.append(f"DELETE FROM {ident(name)} WHERE {where} AND time < {before}")
        dropped = 0
        for rows in self._http.select(";\n".join(counts)):
            dropped += sum(int(count) for _, count in rows.values if count is not None)
        self._http.execute(";\n".join(deletes))
        return dropped

    def downsample(self, until_ns: int) -> int:
        watermark, cursor = read_state(self._http)
        return catch_up(self._http, watermark, max(watermark, floor(until_ns, MINUTE_NS)), cursor)

    def rolled_up_until(self) -> int:
        return read_state(self._http)[0]

    def close(self) -> None:
        self._http.close()

    # -- queries --------------------------------------------------------------------

    def _raw_points(
        self, query: SeriesQuery, asset_ids: list[str], metrics: list[str]
    ) -> dict[tuple[str, str], list[tuple[int, float]]]:
        q = (
            f"SELECT value FROM {sources(metrics)} WHERE {self._scope(query, asset_ids)}"
            f" AND {between(query.start_ns, query.end_ns)}"
            f" GROUP BY {ident('asset_id')} LIMIT {query.limit}"
        )
        found: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        for rows in self._http.select(q):
            key = (rows.name, rows.tags.get("asset_id", ""))
            found[key] += [(int(t), float(v)) for t, v in rows.values if v is not None]
        return found

    def _windows(
        self, query: SeriesQuery, asset_ids: list[str], metrics: list[str]
    ) -> dict[tuple[str, str], list[tuple[int, Partial]]]:
        """Each (metric, asset)'s windows as partial aggregates, rollups and raw combined."""
        assert query.every_ns is not None
        every = query.every_ns
        scope = self._scope(query, asset_ids)
        partials = ", ".join(f"{name}(value)" for name in PARTIALS)
        group = f"GROUP BY time({every}ns), {ident('asset_id')} fill(none)"

        def raw(start: int, end: int) -> str:
            return (
                f"SELECT {partials} FROM {sources(metrics)} "
                f"WHERE {scope} AND {between(start, end)} {group}"
            )

        rollup_partials = (
            'min("min"), max("max"), sum("sum"), sum("count"), first("first"), last("last")'
        )
        watermark = read_state(self._http)[0] if query.resolution != "raw" else 0
        statements: list[str] = []
        for source, lo, hi in _segments(query.start_ns, query.end_ns, query.resolution, watermark):
            if source == "raw":
                statements.append(raw(lo, hi))
            else:
                statements.append(
                    f"SELECT {rollup_partials} FROM {ident(ROLLUPS[source])} WHERE {scope}"
                    f" AND {any_of('metric', metrics)} AND {between(lo, hi)}"
                    f" GROUP BY time({every}ns), {ident('asset_id')}, {ident('metric')}"
                    " fill(none)"
                )
        # Statements read consecutive time ranges: fold each one's windows into the
        # previous ones in statement order.
        by_statement: dict[int, dict[tuple[str, str], dict[int, Partial]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for rows in self._http.select(";\n".join(statements)):
            metric = rows.tags.get("metric", rows.name)
            windows = by_statement[rows.statement][(metric, rows.tags.get("asset_id", ""))]
            for row in rows.values:
                if row[4]:  # count
                    windows[int(row[0])] = Partial(*(float(v) for v in row[1:]))
        combined: dict[tuple[str, str], dict[int, Partial]] = defaultdict(dict)
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
        return f"{ident('org_id')} = {literal(query.org_id)} AND {any_of('asset_id', asset_ids)}"


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

"""The SQLite telemetry store itself: writes and maintenance handed to the writer thread,
reads on pooled connections, and the rollup jobs (see the package docstring)."""

# SQL is assembled only from fixed fragments (table names, column expressions, integer
# constants); every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import math
import sqlite3
import weakref
from collections.abc import Iterable, Sequence
from operator import attrgetter
from pathlib import Path

from outpost.telemetry.sqlite_store.connections import Item, Readers, Writer, shutdown
from outpost.telemetry.sqlite_store.sql import (
    NEXT_POINT,
    ORG_ASSETS_SERIES,
    ORG_SERIES,
    READ_WATERMARK,
    REROLL_HOURS,
    REROLL_MINUTES,
    ROLL_MINUTES,
    SET_WATERMARK,
    TOUCH_HOURS_OF_RANGE,
    ceil,
    floor,
    query_sql,
)
from outpost.telemetry.store import (
    HOUR_NS,
    MINUTE_NS,
    RESOLUTION_NS,
    Point,
    Reading,
    Series,
    SeriesQuery,
)

_value_of = attrgetter("value")


class SQLiteTelemetryStore:
    """The ``TelemetryStore`` on a SQLite file (see the package docstring)."""

    def __init__(
        self, path: Path, *, queue_points: int = 200_000, busy_timeout_s: float = 10.0
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = Writer(path, queue_points, busy_timeout_s)
        self._readers = Readers(path, busy_timeout_s)
        self._finalizer = weakref.finalize(self, shutdown, self._writer, self._readers)

    @property
    def pending_points(self) -> int:
        """Points queued or in the transaction being written."""
        return self._writer.queued_points

    @property
    def transactions(self) -> int:
        """Write transactions committed by this instance (batches share them)."""
        return self._writer.transactions

    def close(self) -> None:
        self._finalizer()

    # -- writes -----------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        if not all(map(math.isfinite, map(_value_of, points))):
            bad = next(p for p in points if not math.isfinite(p.value))
            raise ValueError(f"{bad.metric} of {bad.asset_id}: {bad.value} is not a finite number")
        self._writer.submit(Item(points=points))

    def delete_range(
        self, org_id: str, asset_ids: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> None:
        if start_ns >= end_ns:
            return

        def job(conn: sqlite3.Connection) -> None:
            if asset_ids is None:
                sids = [row[0] for row in conn.execute(ORG_SERIES, {"org": org_id})]
            else:
                params = {"org": org_id, "assets": json.dumps(list(asset_ids))}
                sids = [row[0] for row in conn.execute(ORG_ASSETS_SERIES, params)]
            if not sids:
                return
            (watermark,) = conn.execute(READ_WATERMARK).fetchone()
            for sid in sids:
                conn.execute(
                    "DELETE FROM points WHERE series_id = ? AND time_ns >= ? AND time_ns < ?",
                    (sid, start_ns, end_ns),
                )
            for table, size, touch in (
                ("rollup_1m", MINUTE_NS, "touch_1m"),
                ("rollup_1h", HOUR_NS, "touch_1h"),
            ):
                # Whole buckets inside the range go; a bucket cut by an edge is rolled again.
                lo, hi = ceil(start_ns, size), floor(end_ns, size)
                edges = {
                    floor(edge, size)
                    for edge in (start_ns, end_ns)
                    if edge % size and floor(edge, size) < watermark
                }
                for sid in sids:
                    if lo < hi:
                        conn.execute(
                            f"DELETE FROM {table} "
                            "WHERE series_id = ? AND bucket_ns >= ? AND bucket_ns < ?",
                            (sid, lo, hi),
                        )
                    conn.executemany(
                        f"INSERT OR IGNORE INTO temp.{touch} VALUES (?, ?)",
                        [(sid, bucket) for bucket in edges],
                    )
                if table == "rollup_1m":
                    _run_all(conn, REROLL_MINUTES)
            _run_all(conn, REROLL_HOURS)

        self._writer.run_job(job)

    def apply_retention(self, org_id: str, raw_before_ns: int, rollups_before_ns: int) -> int:
        def job(conn: sqlite3.Connection) -> int:
            sids = [row[0] for row in conn.execute(ORG_SERIES, {"org": org_id})]
            if not sids:
                return 0
            # Late points about to go still count in their rollups.
            for sid in sids:
                conn.execute(
                    "INSERT INTO temp.touch_1m SELECT series_id, bucket_ns FROM dirty "
                    "WHERE series_id = ? AND bucket_ns < ?",
                    (sid, raw_before_ns),
                )
                conn.execute(
                    "DELETE FROM dirty WHERE series_id = ? AND bucket_ns < ?", (sid, raw_before_ns)
                )
            _run_all(conn, (*REROLL_MINUTES, *REROLL_HOURS))
            dropped = 0
            for sid in sids:
                dropped += conn.execute(
                    "DELETE FROM points WHERE series_id = ? AND time_ns < ?", (sid, raw_before_ns)
                ).rowcount
                for table, size in (("rollup_1m", MINUTE_NS), ("rollup_1h", HOUR_NS)):
                    dropped += conn.execute(
                        f"DELETE FROM {table} WHERE series_id = ? AND bucket_ns <= ?",
                        (sid, rollups_before_ns - size),
                    ).rowcount
            return dropped

        return self._writer.run_job(job)

    def downsample(self, until_ns: int) -> int:
        target = floor(until_ns, MINUTE_NS)
        written = self._writer.run_job(_roll_dirty)
        while True:
            rows, done = self._writer.run_job(lambda conn: _roll_step(conn, target))
            written += rows
            if done:
                return written

    # -- reads ------------------------------------------------------------------------

    def rolled_up_until(self) -> int:
        watermark: int = self._readers.read(lambda conn: conn.execute(READ_WATERMARK).fetchone()[0])
        return watermark

    def latest(
        self, org_id: str, asset_ids: Sequence[str], metrics: Sequence[str] | None = None
    ) -> list[Reading]:
        if not asset_ids or (metrics is not None and not metrics):
            return []
        params: dict[str, object] = {
            "org": org_id,
            "assets": json.dumps(list(dict.fromkeys(asset_ids))),
        }
        metric_join, order = "", "s.metric"
        if metrics is not None:
            params["metrics"] = json.dumps(list(dict.fromkeys(metrics)))
            metric_join, order = "JOIN json_each(:metrics) m ON m.value = s.metric", "m.key"
        sql = f"""
            SELECT s.asset_id, s.metric, p.time_ns, p.value
            FROM json_each(:assets) a
            CROSS JOIN series s ON s.org_id = :org AND s.asset_id = a.value
            {metric_join}
            CROSS JOIN points p ON p.series_id = s.id AND p.time_ns = (
                SELECT max(time_ns) FROM points WHERE series_id = s.id)
            ORDER BY a.key, {order}"""
        rows = self._readers.read(lambda conn: conn.execute(sql, params).fetchall())
        return [Reading(*row) for row in rows]

    def query(self, query: SeriesQuery) -> list[Series]:
        if query.every_ns is None and query.resolution != "raw":
            raise ValueError("a query of rollups needs every_ns")
        if query.every_ns is not None and (
            query.every_ns <= 0 or query.every_ns % RESOLUTION_NS[query.resolution]
        ):
            raise ValueError(f"every_ns must be a positive multiple of {query.resolution}")
        assets = list(dict.fromkeys(query.asset_ids))
        metrics = list(dict.fromkeys(query.metrics))
        if not assets or not metrics or query.start_ns >= query.end_ns or query.limit <= 0:
            return []
        params: dict[str, object] = {
            "org": query.org_id,
            "assets": json.dumps(assets),
            "metrics": json.dumps(metrics),
            "limit": query.limit,
        }
        rows = self._readers.read(
            lambda conn: conn.execute(*query_sql(conn, query, params)).fetchall()
        )
        result: list[Series] = []
        for mi, ai, time_ns, value, *_ in rows:
            asset_id = None if ai is None else assets[ai]
            metric = metrics[mi]
            if not result or result[-1].metric != metric or result[-1].asset_id != asset_id:
                result.append(Series(asset_id, metric, [], []))
            result[-1].times_ns.append(time_ns)
            result[-1].values.append(float(value))
        return result


def _run_all(conn: sqlite3.Connection, statements: Iterable[str]) -> int:
    """Run ``statements``; return the rows the inserts among them wrote."""
    written = 0
    for statement in statements:
        cursor = conn.execute(statement)
        if statement.lstrip().startswith("INSERT INTO rollup"):
            written += cursor.rowcount
    return written


def _roll_dirty(conn: sqlite3.Connection) -> int:
    """Roll again the minutes (and hours) that late points fell into."""
    conn.execute("INSERT INTO temp.touch_1m SELECT series_id, bucket_ns FROM dirty")
    conn.execute("DELETE FROM dirty")
    return _run_all(conn, (*REROLL_MINUTES, *REROLL_HOURS))


def _roll_step(conn: sqlite3.Connection, target: int) -> tuple[int, bool]:
    """Roll up at most one hour of minutes from the watermark towards ``target`` in one
    transaction, skipping stretches without points; return (rows written, finished).

    The first run starts at the oldest point's minute."""
    (watermark,) = conn.execute(READ_WATERMARK).fetchone()
    (next_ns,) = conn.execute(NEXT_POINT, (watermark if watermark else -(2**63),)).fetchone()
    if next_ns is None or floor(next_ns, MINUTE_NS) >= target:
        if watermark and watermark < target:
            conn.execute(SET_WATERMARK, (target,))
        return 0, True
    lo = floor(next_ns, MINUTE_NS)  # at or after the (minute-aligned) watermark
    hi = min(floor(lo, HOUR_NS) + HOUR_NS, target)
    bounds = {"lo": lo, "hi": hi}
    written: int = conn.execute(ROLL_MINUTES, bounds).rowcount
    conn.execute(TOUCH_HOURS_OF_RANGE, bounds)
    written += _run_all(conn, REROLL_HOURS)
    conn.execute(SET_WATERMARK, (hi,))
    return written, hi >= target

"""The embedded telemetry store: a SQLite file of its own, in WAL mode.

Layout: ``series`` names each (organization, asset, metric) with an integer id;
``points`` holds the raw values keyed by (series, time) in a table without rowid, so a
series' points are one contiguous range of the primary key; ``rollup_1m`` and
``rollup_1h`` hold partial aggregates (min, max, sum, count, first, last) per bucket.
``meta`` keeps the rollup watermark W: every minute before W is rolled up. A point
written below W marks its (series, minute) in ``dirty``, and the next ``downsample``
rolls that minute (and its hour) again.

Writes go through one writer thread per store behind a queue bounded in points. The
writer drains every pending batch into one transaction and commits it (group commit,
``synchronous=FULL``: an acknowledged point survives a power loss), then wakes every
writer of that transaction. Maintenance (downsample, delete, retention) runs on the
same thread between transactions, so it never waits on this process' own lock. Reads
use their own pooled connections: in WAL mode they never wait behind a write. Several
processes may open the same file; SQLite's locks serialize their writers.

Rolling a minute again reads its raw points: once retention has dropped them, a late
point or a ``delete_range`` edge inside that minute leaves a rollup of what raw points
remain (``apply_retention`` rolls pending late minutes before it drops anything).

Times are assumed to be non-negative nanoseconds, as everywhere in Outpost; buckets
and windows are still floored correctly for negative times.
"""

# SQL is assembled only from fixed fragments (table names, column expressions, integer
# constants); every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Final, TypeVar

from outpost.telemetry.store import (
    HOUR_NS,
    MINUTE_NS,
    RESOLUTION_NS,
    Point,
    Reading,
    Series,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
WATERMARK_KEY: Final = "rolled_up_until"
#: Idle read connections kept open per store (more are opened under load, then closed).
IDLE_READERS: Final = 4

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        org_id TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        CONSTRAINT uq_series_key UNIQUE (org_id, asset_id, metric)
    )""",
    """CREATE TABLE IF NOT EXISTS points (
        series_id INTEGER NOT NULL,
        time_ns INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, time_ns)
    ) WITHOUT ROWID""",
    *(
        f"""CREATE TABLE IF NOT EXISTS {table} (
            series_id INTEGER NOT NULL,
            bucket_ns INTEGER NOT NULL,
            min REAL, max REAL, sum REAL, count INTEGER NOT NULL,
            first REAL, first_ns INTEGER NOT NULL,
            last REAL, last_ns INTEGER NOT NULL,
            PRIMARY KEY (series_id, bucket_ns)
        ) WITHOUT ROWID"""
        for table in ("rollup_1m", "rollup_1h")
    ),
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS dirty (
        series_id INTEGER NOT NULL,
        bucket_ns INTEGER NOT NULL,
        PRIMARY KEY (series_id, bucket_ns)
    ) WITHOUT ROWID""",
    f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{WATERMARK_KEY}', 0)",
)

#: Scratch tables of the writer's connection: the buckets to roll up again.
_TEMP_SCHEMA: Final = tuple(
    f"""CREATE TEMP TABLE IF NOT EXISTS {table} (
        series_id INTEGER NOT NULL,
        bucket_ns INTEGER NOT NULL,
        PRIMARY KEY (series_id, bucket_ns)
    ) WITHOUT ROWID"""
    for table in ("touch_1m", "touch_1h")
)


def _floor_sql(expr: str, size: int | str) -> str:
    """SQL flooring ``expr`` to a multiple of ``size`` (``%`` truncates in SQLite)."""
    return f"({expr} - ((({expr}) % {size}) + {size}) % {size})"


def _floor(value: int, size: int) -> int:
    return value - value % size


def _ceil(value: int, size: int) -> int:
    return -(-value // size) * size


_INSERT_POINTS: Final = "INSERT OR REPLACE INTO points (series_id, time_ns, value) VALUES (?, ?, ?)"
_MARK_DIRTY: Final = "INSERT OR IGNORE INTO dirty (series_id, bucket_ns) VALUES (?, ?)"
_READ_WATERMARK: Final = f"SELECT value FROM meta WHERE key = '{WATERMARK_KEY}'"
_SET_WATERMARK: Final = f"UPDATE meta SET value = ? WHERE key = '{WATERMARK_KEY}'"

#: First point time at or after ``?`` over every series: one primary-key seek per series.
_NEXT_POINT: Final = """
    SELECT min((SELECT p.time_ns FROM points p
                WHERE p.series_id = s.id AND p.time_ns >= ?
                ORDER BY p.time_ns LIMIT 1))
    FROM series s"""

#: 1-minute rollups of every series for the points in [:lo, :hi) (minute-aligned).
_ROLL_MINUTES: Final = f"""
    INSERT OR REPLACE INTO rollup_1m
        (series_id, bucket_ns, min, max, sum, count, first, first_ns, last, last_ns)
    SELECT g.sid, g.bucket, g.mn, g.mx, g.sm, g.cnt, f.value, g.fns, l.value, g.lns
    FROM (
        SELECT p.series_id AS sid, {_floor_sql("p.time_ns", MINUTE_NS)} AS bucket,
               min(p.value) AS mn, max(p.value) AS mx, sum(p.value) AS sm, count(*) AS cnt,
               min(p.time_ns) AS fns, max(p.time_ns) AS lns
        FROM series s CROSS JOIN points p ON p.series_id = s.id
        WHERE p.time_ns >= :lo AND p.time_ns < :hi
        GROUP BY p.series_id, bucket
    ) g
    JOIN points f ON f.series_id = g.sid AND f.time_ns = g.fns
    JOIN points l ON l.series_id = g.sid AND l.time_ns = g.lns"""

#: The hours that minutes in [:lo, :hi) fall into, for every series, to roll up again.
_TOUCH_HOURS_OF_RANGE: Final = f"""
    INSERT OR IGNORE INTO temp.touch_1h (series_id, bucket_ns)
    SELECT DISTINCT r.series_id, {_floor_sql("r.bucket_ns", HOUR_NS)}
    FROM series s CROSS JOIN rollup_1m r ON r.series_id = s.id
    WHERE r.bucket_ns >= :lo AND r.bucket_ns < :hi"""

#: Roll the minutes listed in temp.touch_1m again from the raw points.
_REROLL_MINUTES: Final = (
    """DELETE FROM rollup_1m
       WHERE (series_id, bucket_ns) IN (SELECT series_id, bucket_ns FROM temp.touch_1m)""",
    f"""INSERT INTO rollup_1m
        (series_id, bucket_ns, min, max, sum, count, first, first_ns, last, last_ns)
    SELECT g.sid, g.bucket, g.mn, g.mx, g.sm, g.cnt, f.value, g.fns, l.value, g.lns
    FROM (
        SELECT t.series_id AS sid, t.bucket_ns AS bucket,
               min(p.value) AS mn, max(p.value) AS mx, sum(p.value) AS sm, count(*) AS cnt,
               min(p.time_ns) AS fns, max(p.time_ns) AS lns
        FROM temp.touch_1m t CROSS JOIN points p
            ON p.series_id = t.series_id
            AND p.time_ns >= t.bucket_ns AND p.time_ns < t.bucket_ns + {MINUTE_NS}
        GROUP BY t.series_id, t.bucket_ns
    ) g
    JOIN points f ON f.series_id = g.sid AND f.time_ns = g.fns
    JOIN points l ON l.series_id = g.sid AND l.time_ns = g.lns""",
    f"""INSERT OR IGNORE INTO temp.touch_1h (series_id, bucket_ns)
    SELECT DISTINCT series_id, {_floor_sql("bucket_ns", HOUR_NS)} FROM temp.touch_1m""",
    "DELETE FROM temp.touch_1m",
)

#: Roll the hours listed in temp.touch_1h again from the 1-minute rollups.
_REROLL_HOURS: Final = (
    """DELETE FROM rollup_1h
       WHERE (series_id, bucket_ns) IN (SELECT series_id, bucket_ns FROM temp.touch_1h)""",
    f"""INSERT INTO rollup_1h
        (series_id, bucket_ns, min, max, sum, count, first, first_ns, last, last_ns)
    SELECT g.sid, g.bucket, g.mn, g.mx, g.sm, g.cnt, f.first, f.first_ns, l.last, l.last_ns
    FROM (
        SELECT t.series_id AS sid, t.bucket_ns AS bucket,
               min(r.min) AS mn, max(r.max) AS mx, sum(r.sum) AS sm, sum(r.count) AS cnt,
               min(r.bucket_ns) AS fb, max(r.bucket_ns) AS lb
        FROM temp.touch_1h t CROSS JOIN rollup_1m r
            ON r.series_id = t.series_id
            AND r.bucket_ns >= t.bucket_ns AND r.bucket_ns < t.bucket_ns + {HOUR_NS}
        GROUP BY t.series_id, t.bucket_ns
    ) g
    JOIN rollup_1m f ON f.series_id = g.sid AND f.bucket_ns = g.fb
    JOIN rollup_1m l ON l.series_id = g.sid AND l.bucket_ns = g.lb""",
    "DELETE FROM temp.touch_1h",
)

_ORG_SERIES: Final = "SELECT id FROM series WHERE org_id = :org"
_ORG_ASSETS_SERIES: Final = """
    SELECT s.id FROM json_each(:assets) a
    CROSS JOIN series s ON s.org_id = :org AND s.asset_id = a.value"""

#: Per aggregate: the partial columns of a raw point and of a rollup row (``c0``,
#: ``c1``), and how the partials of one window combine into its value. For first/last,
#: a lone min()/max() makes SQLite take the bare column ``g.c0`` from that row.
_PARTIALS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], str]]] = {
    "mean": (("x.value", "1"), ("x.sum", "x.count"), "sum(g.c0) / sum(g.c1) AS v"),
    "min": (("x.value",), ("x.min",), "min(g.c0) AS v"),
    "max": (("x.value",), ("x.max",), "max(g.c0) AS v"),
    "sum": (("x.value",), ("x.sum",), "sum(g.c0) AS v"),
    "count": (("1",), ("x.count",), "sum(g.c0) AS v"),
    "first": (("x.value", "x.time_ns"), ("x.first", "x.first_ns"), "g.c0 AS v, min(g.c1)"),
    "last": (("x.value", "x.time_ns"), ("x.last", "x.last_ns"), "g.c0 AS v, max(g.c1)"),
}
_ACROSS_SQL: Final = {"sum": "sum(v)", "mean": "avg(v)", "min": "min(v)", "max": "max(v)"}

#: The requested series with their rank in the answer: metric index, asset index.
_RANKS_CTE: Final = """
    WITH a(ai, asset) AS (SELECT key, value FROM json_each(:assets)),
    m(mi, metric) AS (SELECT key, value FROM json_each(:metrics)),
    ranks(sid, mi, ai) AS MATERIALIZED (
        SELECT s.id, m.mi, a.ai FROM a CROSS JOIN m
        CROSS JOIN series s ON s.org_id = :org AND s.asset_id = a.asset AND s.metric = m.metric
    )"""

_Result = TypeVar("_Result")
_value_of = attrgetter("value")


def _is_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the database failing (locked, I/O, full, corrupt), rather than
    one batch it could not take (a time out of range, a bug)."""
    return isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError) or (
        type(exc) is sqlite3.DatabaseError
    )


def _connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32768")
    return conn


def _segments(
    start_ns: int, end_ns: int, resolution: str, watermark: int
) -> list[tuple[str, int, int]]:
    """Split [start, end) into disjoint (table, lo, hi) parts: whole rollup buckets below
    the watermark from the coarsest table that fits, raw points for the rest."""
    tiers: tuple[tuple[str, int], ...] = {
        "1h": (("rollup_1h", HOUR_NS), ("rollup_1m", MINUTE_NS)),
        "1m": (("rollup_1m", MINUTE_NS),),
    }.get(resolution, ())

    def split(lo: int, hi: int, rest: tuple[tuple[str, int], ...]) -> list[tuple[str, int, int]]:
        if lo >= hi:
            return []
        if not rest:
            return [("points", lo, hi)]
        (table, size), finer = rest[0], rest[1:]
        a, b = _ceil(lo, size), _floor(hi, size)
        if a >= b:
            return split(lo, hi, finer)
        return [*split(lo, a, finer), (table, a, b), *split(b, hi, finer)]

    covered = min(end_ns, watermark)
    parts = [*split(start_ns, covered, tiers), *split(max(start_ns, covered), end_ns, ())]
    merged: list[tuple[str, int, int]] = []
    for part in parts:
        if merged and merged[-1][0] == part[0] == "points" and merged[-1][2] == part[1]:
            merged[-1] = ("points", merged[-1][1], part[2])
        else:
            merged.append(part)
    return merged


def _unavailable(cause: Exception) -> StoreUnavailable:
    error = StoreUnavailable(f"the telemetry store failed: {cause}")
    error.__cause__ = cause
    return error


class _Item:
    """A write batch (``points``) or a maintenance job (``job``) waiting for the writer."""

    __slots__ = ("done", "error", "job", "points", "result")

    def __init__(
        self,
        points: Sequence[Point] = (),
        job: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        self.points = points
        self.job = job
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.result: object = None


class _Writer:
    """The writer thread and its connection. Holds no reference to the store, so a store
    that is dropped without ``close()`` is collected and its finalizer stops this."""

    def __init__(self, path: Path, queue_points: int, busy_timeout_s: float) -> None:
        self.queue_points = queue_points
        self.queued_points = 0
        self.transactions = 0
        self._items: list[_Item] = []
        self._cond = threading.Condition()
        self._closing = False
        self._series_ids: dict[tuple[str, str, str], int] = {}
        self._added: list[tuple[str, str, str]] = []  # series inserted by this transaction
        self._conn = _connect(path, busy_timeout_s)
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._migrate()
            for statement in _TEMP_SCHEMA:
                self._conn.execute(statement)
        except BaseException:
            self._conn.close()
            raise
        self._thread = threading.Thread(
            target=self._run, name=f"telemetry-writer:{path.name}", daemon=True
        )
        self._thread.start()

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"telemetry file has schema version {version}, newer than this code "
                    f"({SCHEMA_VERSION})"
                )
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- the callers' side ------------------------------------------------------------

    def submit(self, item: _Item) -> None:
        size = len(item.points)
        with self._cond:
            if self._closing:
                raise StoreUnavailable("the telemetry store is closed")
            # A batch larger than the whole queue is taken when the queue is empty:
            # refusing it would make its client retry forever.
            if self.queued_points and self.queued_points + size > self.queue_points:
                raise StoreOverloaded(
                    f"telemetry write queue full ({self.queued_points} points pending)",
                    retry_after=1,
                )
            self.queued_points += size
            self._items.append(item)
            self._cond.notify()
        item.done.wait()
        if item.error is not None:
            raise item.error

    def run_job(self, job: Callable[[sqlite3.Connection], _Result]) -> _Result:
        item = _Item(job=job)
        self.submit(item)
        return item.result  # type: ignore[return-value]

    def stop(self, timeout: float | None = None) -> None:
        """Let the thread drain what is queued, then exit and close its connection."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        items: list[_Item] = []
        try:
            while True:
                with self._cond:
                    while not self._items and not self._closing:
                        self._cond.wait()
                    if not self._items:
                        return
                    items, self._items = self._items, []
                batch: list[_Item] = []
                for item in items:
                    if item.job is None:
                        batch.append(item)
                        continue
                    self._write(batch)
                    batch = []
                    self._run_job(item)
                self._write(batch)
        finally:
            with self._cond:
                self._closing = True
                items += self._items
                self._items = []
            for item in items:
                if not item.done.is_set():  # only if the loop died of a bug
                    item.error = StoreUnavailable("the telemetry writer stopped")
                    item.done.set()
            self._conn.close()

    def _run_job(self, item: _Item) -> None:
        assert item.job is not None
        try:
            item.result = self._transaction(item.job)
        except Exception as exc:
            if _is_failure(exc):
                log.warning("telemetry maintenance failed: %s", exc)
            item.error = _unavailable(exc) if _is_failure(exc) else exc
        item.done.set()

    def _write(self, items: list[_Item]) -> None:
        if not items:
            return
        failure: Exception | None = None
        try:
            self._transaction(lambda conn: self._insert(conn, items))
        except Exception as exc:
            if not _is_failure(exc) and len(items) > 1:
                # One batch the database refused, not the database failing: keep the others.
                for item in items:
                    self._write([item])
                return
            log.warning("telemetry write of %d batches failed: %s", len(items), exc)
            failure = exc
        with self._cond:
            self.queued_points -= sum(len(item.points) for item in items)
        for item in items:
            if failure is not None:
                item.error = _unavailable(failure) if _is_failure(failure) else failure
            item.done.set()

    def _transaction(self, work: Callable[[sqlite3.Connection], _Result]) -> _Result:
        conn = self._conn
        added: list[tuple[str, str, str]] = []
        self._added = added
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for key in added:  # series rows rolled back with the transaction
                self._series_ids.pop(key, None)
            raise
        self.transactions += 1
        return result

    def _insert(self, conn: sqlite3.Connection, items: list[_Item]) -> None:
        (watermark,) = conn.execute(_READ_WATERMARK).fetchone()
        ids = self._series_ids
        key_of = attrgetter("org_id", "asset_id", "metric")
        for item in items:
            points = item.points
            try:
                rows = [(ids[key_of(p)], p.time_ns, p.value) for p in points]
            except KeyError:
                self._add_series(conn, {key_of(p) for p in points if key_of(p) not in ids})
                rows = [(ids[key_of(p)], p.time_ns, p.value) for p in points]
            conn.executemany(_INSERT_POINTS, rows)
            if watermark:
                late = {(sid, t - t % MINUTE_NS) for sid, t, _ in rows if t < watermark}
                if late:
                    conn.executemany(_MARK_DIRTY, late)

    def _add_series(self, conn: sqlite3.Connection, keys: Iterable[tuple[str, str, str]]) -> None:
        for key in keys:
            conn.execute(
                "INSERT OR IGNORE INTO series (org_id, asset_id, metric) VALUES (?, ?, ?)", key
            )
            (sid,) = conn.execute(
                "SELECT id FROM series WHERE org_id = ? AND asset_id = ? AND metric = ?", key
            ).fetchone()
            self._series_ids[key] = sid
            self._added.append(key)


class _Readers:
    """A small pool of read connections, handed out one per call."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the telemetry store is closed")
            if self._idle:
                return self._idle.pop()
        conn = _connect(self._path, self._busy_timeout_s)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        with self._lock:
            if not self._closed and len(self._idle) < IDLE_READERS:
                self._idle.append(conn)
                return
        conn.close()

    def read(self, work: Callable[[sqlite3.Connection], _Result]) -> _Result:
        """Run ``work`` in one read transaction (one consistent snapshot)."""
        conn = self.acquire()
        try:
            conn.execute("BEGIN")
            return work(conn)
        except sqlite3.DatabaseError as exc:
            if not _is_failure(exc):
                raise
            raise _unavailable(exc) from exc
        finally:
            self.release(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _shutdown(writer: _Writer, readers: _Readers) -> None:
    writer.stop(timeout=10)
    readers.close()


class SQLiteTelemetryStore:
    """The ``TelemetryStore`` on a SQLite file (see the module docstring)."""

    def __init__(
        self, path: Path, *, queue_points: int = 200_000, busy_timeout_s: float = 10.0
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = _Writer(path, queue_points, busy_timeout_s)
        self._readers = _Readers(path, busy_timeout_s)
        self._finalizer = weakref.finalize(self, _shutdown, self._writer, self._readers)

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
        self._writer.submit(_Item(points=points))

    def delete_range(
        self, org_id: str, asset_ids: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> None:
        if start_ns >= end_ns:
            return

        def job(conn: sqlite3.Connection) -> None:
            if asset_ids is None:
                sids = [row[0] for row in conn.execute(_ORG_SERIES, {"org": org_id})]
            else:
                params = {"org": org_id, "assets": json.dumps(list(asset_ids))}
                sids = [row[0] for row in conn.execute(_ORG_ASSETS_SERIES, params)]
            if not sids:
                return
            (watermark,) = conn.execute(_READ_WATERMARK).fetchone()
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
                lo, hi = _ceil(start_ns, size), _floor(end_ns, size)
                edges = {
                    _floor(edge, size)
                    for edge in (start_ns, end_ns)
                    if edge % size and _floor(edge, size) < watermark
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
                    _run_all(conn, _REROLL_MINUTES)
            _run_all(conn, _REROLL_HOURS)

        self._writer.run_job(job)

    def apply_retention(self, org_id: str, raw_before_ns: int, rollups_before_ns: int) -> int:
        def job(conn: sqlite3.Connection) -> int:
            sids = [row[0] for row in conn.execute(_ORG_SERIES, {"org": org_id})]
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
            _run_all(conn, (*_REROLL_MINUTES, *_REROLL_HOURS))
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
        target = _floor(until_ns, MINUTE_NS)
        written = self._writer.run_job(_roll_dirty)
        while True:
            rows, done = self._writer.run_job(lambda conn: _roll_step(conn, target))
            written += rows
            if done:
                return written

    # -- reads ------------------------------------------------------------------------

    def rolled_up_until(self) -> int:
        watermark: int = self._readers.read(
            lambda conn: conn.execute(_READ_WATERMARK).fetchone()[0]
        )
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
            lambda conn: conn.execute(*_query_sql(conn, query, params)).fetchall()
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
    return _run_all(conn, (*_REROLL_MINUTES, *_REROLL_HOURS))


def _roll_step(conn: sqlite3.Connection, target: int) -> tuple[int, bool]:
    """Roll up at most one hour of minutes from the watermark towards ``target`` in one
    transaction, skipping stretches without points; return (rows written, finished).

    The first run starts at the oldest point's minute."""
    (watermark,) = conn.execute(_READ_WATERMARK).fetchone()
    (next_ns,) = conn.execute(_NEXT_POINT, (watermark if watermark else -(2**63),)).fetchone()
    if next_ns is None or _floor(next_ns, MINUTE_NS) >= target:
        if watermark and watermark < target:
            conn.execute(_SET_WATERMARK, (target,))
        return 0, True
    lo = _floor(next_ns, MINUTE_NS)  # at or after the (minute-aligned) watermark
    hi = min(_floor(lo, HOUR_NS) + HOUR_NS, target)
    bounds = {"lo": lo, "hi": hi}
    written: int = conn.execute(_ROLL_MINUTES, bounds).rowcount
    conn.execute(_TOUCH_HOURS_OF_RANGE, bounds)
    written += _run_all(conn, _REROLL_HOURS)
    conn.execute(_SET_WATERMARK, (hi,))
    return written, hi >= target


def _query_sql(
    conn: sqlite3.Connection, query: SeriesQuery, params: dict[str, object]
) -> tuple[str, dict[str, object]]:
    """The SQL of ``query``, rows (metric index, asset index or NULL, time, value)."""
    if query.every_ns is None:
        params.update(lo=query.start_ns, hi=query.end_ns)
        sql = f"""{_RANKS_CTE}
            SELECT r.mi, r.ai, x.time_ns, x.value
            FROM ranks r CROSS JOIN points x ON x.series_id = r.sid
            WHERE x.time_ns >= :lo AND x.time_ns < :hi
            ORDER BY r.mi, r.ai, x.time_ns
            LIMIT :limit"""
        return sql, params

    (watermark,) = conn.execute(_READ_WATERMARK).fetchone()
    raw_cols, rollup_cols, combine = _PARTIALS[query.aggregate]
    params["every"] = query.every_ns
    arms = []
    for n, (table, lo, hi) in enumerate(
        _segments(query.start_ns, query.end_ns, query.resolution, watermark)
    ):
        time_col, cols = (
            ("x.time_ns", raw_cols) if table == "points" else ("x.bucket_ns", rollup_cols)
        )
        partials = ", ".join(f"{col} AS c{i}" for i, col in enumerate(cols))
        params[f"lo{n}"], params[f"hi{n}"] = lo, hi
        arms.append(
            f"SELECT r.mi AS mi, r.ai AS ai, {_floor_sql(time_col, ':every')} AS w, {partials} "
            f"FROM ranks r CROSS JOIN {table} x ON x.series_id = r.sid "
            f"WHERE {time_col} >= :lo{n} AND {time_col} < :hi{n}"
        )
    per_asset = (
        f"SELECT g.mi AS mi, g.ai AS ai, g.w AS w, {combine} "
        f"FROM ({' UNION ALL '.join(arms)}) g GROUP BY g.mi, g.ai, g.w"
    )
    if query.across is None:
        sql = f"{_RANKS_CTE} {per_asset} ORDER BY mi, ai, w LIMIT :limit"
    else:
        sql = (
            f"{_RANKS_CTE} SELECT mi, NULL, w, {_ACROSS_SQL[query.across]} "
            f"FROM ({per_asset}) GROUP BY mi, w ORDER BY mi, w LIMIT :limit"
        )
    return sql, params

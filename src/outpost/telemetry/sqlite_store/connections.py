"""The SQLite telemetry store's connections: the writer thread behind its queue, which
group-commits batches and runs maintenance jobs, and the pool of read connections."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Final, TypeVar

from outpost.telemetry.sqlite_store.sql import (
    INSERT_POINTS,
    MARK_DIRTY,
    READ_WATERMARK,
    SCHEMA,
    SCHEMA_VERSION,
    TEMP_SCHEMA,
)
from outpost.telemetry.store import MINUTE_NS, Point, StoreOverloaded, StoreUnavailable

log = logging.getLogger(__name__)

WAL_CHECKPOINT_PAGES: Final = 16_384

#: Idle read connections kept open per store (more are opened under load, then closed).
IDLE_READERS: Final = 4

_Result = TypeVar("_Result")


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


def _unavailable(cause: Exception) -> StoreUnavailable:
    error = StoreUnavailable(f"the telemetry store failed: {cause}")
    error.__cause__ = cause
    return error


class Item:
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


class Writer:
    """The writer thread and its connection. Holds no reference to the store, so a store
    that is dropped without ``close()`` is collected and its finalizer stops this."""

    def __init__(self, path: Path, queue_points: int, busy_timeout_s: float) -> None:
        self.queue_points = queue_points
        self.queued_points = 0
        self.transactions = 0
        self._items: list[Item] = []
        self._cond = threading.Condition()
        self._closing = False
        self._series_ids: dict[tuple[str, str, str], int] = {}
        self._added: list[tuple[str, str, str]] = []  # series inserted by this transaction
        self._conn = _connect(path, busy_timeout_s)
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            # A batch dirties a page per series it touches; checkpointing every 1,000 WAL
            # pages (the default) wrote those pages back after nearly every commit.
            # Every 16,384 pages (64 MiB) a page rewritten by many commits is written
            # back once: +30 % points/s on 34,000 series (bench/README.md).
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            self._migrate()
            for statement in TEMP_SCHEMA:
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
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- the callers' side ------------------------------------------------------------

    def submit(self, item: Item) -> None:
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
        item = Item(job=job)
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
        items: list[Item] = []
        try:
            while True:
                with self._cond:
                    while not self._items and not self._closing:
                        self._cond.wait()
                    if not self._items:
                        return
                    items, self._items = self._items, []
                batch: list[Item] = []
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

    def _run_job(self, item: Item) -> None:
        assert item.job is not None
        try:
            item.result = self._transaction(item.job)
        except Exception as exc:
            if _is_failure(exc):
                log.warning("telemetry maintenance failed: %s", exc)
            item.error = _unavailable(exc) if _is_failure(exc) else exc
        item.done.set()

    def _write(self, items: list[Item]) -> None:
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

    def _insert(self, conn: sqlite3.Connection, items: list[Item]) -> None:
        (watermark,) = conn.execute(READ_WATERMARK).fetchone()
        ids = self._series_ids
        key_of = attrgetter("org_id", "asset_id", "metric")
        for item in items:
            points = item.points
            try:
                rows = [(ids[key_of(p)], p.time_ns, p.value) for p in points]
            except KeyError:
                self._add_series(conn, {key_of(p) for p in points if key_of(p) not in ids})
                rows = [(ids[key_of(p)], p.time_ns, p.value) for p in points]
            conn.executemany(INSERT_POINTS, rows)
            if watermark:
                late = {(sid, t - t % MINUTE_NS) for sid, t, _ in rows if t < watermark}
                if late:
                    conn.executemany(MARK_DIRTY, late)

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


class Readers:
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


def shutdown(writer: Writer, readers: Readers) -> None:
    writer.stop(timeout=10)
    readers.close()

"""What only the SQLite telemetry store promises: its file, its queue, its writer thread.

Concurrency is real: threads and a second store instance on the same file, the way two
gunicorn workers share it. To hold the writer at a known point, a plain SQLite
connection takes the file's write lock, as another process would.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from outpost.telemetry.sqlite_store import SCHEMA_VERSION, SQLiteTelemetryStore
from outpost.telemetry.store import (
    AGGREGATES,
    HOUR_NS,
    MINUTE_NS,
    NS_PER_SECOND,
    Point,
    Series,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
)

ORG = "org-acme"
SECOND = NS_PER_SECOND
#: How long a test waits for a thread to reach a state before calling it a hang.
PATIENCE_S = 30.0


@pytest.fixture
def t0() -> int:
    now = time.time_ns()
    return now - now % HOUR_NS - 4 * HOUR_NS


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "telemetry.db"


@pytest.fixture
def open_store(path: Path) -> Iterator[Callable[..., SQLiteTelemetryStore]]:
    """Open stores on ``path`` (keyword options passed on); all closed after the test."""
    opened: list[SQLiteTelemetryStore] = []

    def open_(**options: Any) -> SQLiteTelemetryStore:
        store = SQLiteTelemetryStore(path, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def pt(asset_id: str, metric: str, time_ns: int, value: float) -> Point:
    return Point(ORG, asset_id, metric, time_ns, value)


def raw(store: SQLiteTelemetryStore, assets: Sequence[str], metrics: Sequence[str]) -> list[Series]:
    return store.query(SeriesQuery(ORG, tuple(assets), tuple(metrics), 0, 2**62))


def count(store: SQLiteTelemetryStore, assets: Sequence[str], metrics: Sequence[str]) -> int:
    result = store.query(
        SeriesQuery(ORG, tuple(assets), tuple(metrics), 0, 2**62, every_ns=2**62, aggregate="count")
    )
    return int(sum(sum(series.values) for series in result))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.005)


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Hold the file's write lock from another connection, as another process could."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


class WriterThread(threading.Thread):
    """Writes ``points`` through ``store`` and keeps what ``write`` raised."""

    def __init__(self, store: SQLiteTelemetryStore, points: Sequence[Point]) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.points = points
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.store.write(self.points)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> BaseException | None:
        self.join(PATIENCE_S)
        assert not self.is_alive()
        return self.error


# -- the file ------------------------------------------------------------------------


def test_points_and_rollups_survive_closing_and_reopening(
    open_store: Callable[..., SQLiteTelemetryStore], path: Path, t0: int
) -> None:
    store = open_store()
    store.write([pt("a1", "power", t0 + i * MINUTE_NS, float(i)) for i in range(90)])
    store.downsample(t0 + HOUR_NS)
    store.close()
    store.close()  # twice is fine

    again = open_store()

    assert again.rolled_up_until() == t0 + HOUR_NS
    assert count(again, ["a1"], ["power"]) == 90
    hourly = SeriesQuery(
        ORG,
        ("a1",),
        ("power",),
        t0,
        t0 + 2 * HOUR_NS,
        every_ns=HOUR_NS,
        aggregate="sum",
        resolution="1h",
    )
    assert again.query(hourly) == [Series("a1", "power", [t0, t0 + HOUR_NS], [1770.0, 2235.0])]
    again.write([pt("a1", "power", t0 + 90 * MINUTE_NS, 1.0)])  # same series id again
    assert count(again, ["a1"], ["power"]) == 91


def test_the_file_is_in_wal_mode_with_a_schema_version(
    open_store: Callable[..., SQLiteTelemetryStore], path: Path
) -> None:
    open_store().close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(RuntimeError, match="newer"):
        SQLiteTelemetryStore(path)


def test_writing_after_close_is_refused(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()
    store.close()

    with pytest.raises(StoreUnavailable):
        store.write([pt("a1", "power", t0, 1.0)])


def test_non_finite_values_are_refused_and_nothing_of_their_batch_written(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()

    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="not a finite number"):
            store.write([pt("a1", "power", t0, 1.0), pt("a1", "power", t0 + SECOND, bad)])

    assert raw(store, ["a1"], ["power"]) == []


def test_a_store_nobody_closes_stops_its_thread_once_collected(path: Path, t0: int) -> None:
    store = SQLiteTelemetryStore(path)
    store.write([pt("a1", "power", t0, 1.0)])
    (writer,) = [t for t in threading.enumerate() if t.name == f"telemetry-writer:{path.name}"]

    del store
    gc.collect()

    writer.join(PATIENCE_S)
    assert not writer.is_alive()


# -- the queue and the writer thread -------------------------------------------------


def test_a_full_queue_refuses_the_whole_batch_at_once(
    open_store: Callable[..., SQLiteTelemetryStore], path: Path, t0: int
) -> None:
    store = open_store(queue_points=10)
    first = [pt("a1", "power", t0 + i * SECOND, float(i)) for i in range(8)]
    refused = [pt("a2", "power", t0 + i * SECOND, float(i)) for i in range(5)]

    with write_lock_held(path):
        writer = WriterThread(store, first)
        writer.start()
        wait_until(lambda: store.pending_points == 8, "the first batch to be queued")

        with pytest.raises(StoreOverloaded) as refusal:
            store.write(refused)

    assert refusal.value.retry_after == 1
    assert writer.finish() is None
    assert count(store, ["a1"], ["power"]) == 8
    assert raw(store, ["a2"], ["power"]) == []
    assert store.pending_points == 0
    store.write(refused)  # room again
    assert count(store, ["a2"], ["power"]) == 5


def test_a_batch_larger_than_the_queue_is_taken_when_the_queue_is_empty(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store(queue_points=10)

    store.write([pt("a1", "power", t0 + i * SECOND, 1.0) for i in range(25)])

    assert count(store, ["a1"], ["power"]) == 25


def test_a_failed_commit_fails_every_writer_waiting_on_it_and_writes_nothing(
    open_store: Callable[..., SQLiteTelemetryStore], path: Path, t0: int
) -> None:
    store = open_store(busy_timeout_s=0.2)
    writers = [
        WriterThread(store, [pt(f"a{n}", "power", t0 + i * SECOND, 1.0) for i in range(10)])
        for n in range(4)
    ]

    with write_lock_held(path):
        for writer in writers:
            writer.start()
        errors = [writer.finish() for writer in writers]

    assert all(isinstance(error, StoreUnavailable) for error in errors), errors
    assert raw(store, [f"a{n}" for n in range(4)], ["power"]) == []
    assert store.pending_points == 0
    store.write(writers[0].points)  # the lock is free again: the retry goes through
    assert count(store, ["a0"], ["power"]) == 10


def test_writers_waiting_together_share_one_commit(
    open_store: Callable[..., SQLiteTelemetryStore], path: Path, t0: int
) -> None:
    store = open_store()
    store.write([pt("warm-up", "power", t0, 1.0)])
    before = store.transactions
    writers = [
        WriterThread(store, [pt(f"a{n}", "power", t0 + i * SECOND, 1.0) for i in range(10)])
        for n in range(6)
    ]

    with write_lock_held(path):
        for writer in writers:
            writer.start()
        wait_until(lambda: store.pending_points == 60, "every batch to be queued")

    assert [writer.finish() for writer in writers] == [None] * 6
    # The writer may have taken the first batch alone before the others came; the rest
    # waited for the lock together and went in one transaction.
    assert 1 <= store.transactions - before <= 2
    assert count(store, [f"a{n}" for n in range(6)], ["power"]) == 60


def test_a_batch_the_database_refuses_does_not_sink_the_others_of_its_commit(
    open_store: Callable[..., SQLiteTelemetryStore], path: Path, t0: int
) -> None:
    store = open_store()
    first = WriterThread(store, [pt("a1", "power", t0, 1.0)])
    bad = WriterThread(store, [pt("a2", "power", t0, 1.0), pt("a2", "power", 2**70, 1.0)])
    good = WriterThread(store, [pt("a3", "power", t0, 1.0)])

    with write_lock_held(path):
        first.start()
        wait_until(lambda: store.pending_points == 1, "the first batch to be taken")
        bad.start()
        good.start()
        wait_until(lambda: store.pending_points == 4, "the other two to be queued")

    assert first.finish() is None
    assert isinstance(bad.finish(), OverflowError)
    assert good.finish() is None
    assert [s.asset_id for s in raw(store, ["a1", "a2", "a3"], ["power"])] == ["a1", "a3"]


def test_concurrent_writers_are_all_durable(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()
    threads, batches, size = 8, 25, 200
    writers_done = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def write_batches(n: int) -> None:
        try:
            for b in range(batches):
                store.write(
                    [
                        pt(f"a{n}", f"m{i % 4}", t0 + (b * size + i) * SECOND, float(i))
                        for i in range(size)
                    ]
                )
        except BaseException as exc:
            errors.append(exc)
        writers_done.wait()

    for n in range(threads):
        threading.Thread(target=write_batches, args=(n,), daemon=True).start()
    writers_done.wait(PATIENCE_S)
    store.close()

    assert errors == []
    again = open_store()
    metrics = [f"m{i}" for i in range(4)]
    assert count(again, [f"a{n}" for n in range(threads)], metrics) == threads * batches * size
    assert all(count(again, [f"a{n}"], metrics) == batches * size for n in range(threads))


def test_two_store_instances_on_one_file_both_write(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    workers = [open_store(), open_store()]  # two gunicorn workers
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def ingest(store: SQLiteTelemetryStore, offset: int) -> None:
        barrier.wait()
        try:
            for b in range(20):
                # Both create the same new series at the same time, then fill them.
                store.write(
                    [
                        pt(f"a{i % 5}", "power", t0 + (offset + b * 100 + i) * SECOND, 1.0)
                        for i in range(100)
                    ]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=ingest, args=(store, n * 2000), daemon=True)
        for n, store in enumerate([*workers, *workers])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE_S)

    assert errors == []
    assets = [f"a{i}" for i in range(5)]
    assert count(workers[0], assets, ["power"]) == count(workers[1], assets, ["power"]) == 8000
    workers[0].downsample(t0 + 2 * HOUR_NS)
    assert workers[1].rolled_up_until() == t0 + 2 * HOUR_NS
    workers[1].write([pt("a0", "power", t0 + 5 * SECOND, 3.0)])  # late for worker 0's rollup
    assert workers[1].downsample(t0 + 2 * HOUR_NS) == 2  # its minute and its hour


# -- downsampling and rollups --------------------------------------------------------


def test_downsample_rolls_complete_minutes_and_says_how_many_rows_it_wrote(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()
    store.write([pt("a1", "power", t0 + i * MINUTE_NS + SECOND, float(i)) for i in range(90)])

    assert store.downsample(t0 - HOUR_NS) == 0  # before any point: nothing yet
    assert store.rolled_up_until() == 0
    # 60 minutes and their hour; minute 60 is not complete at t0 + 60m 30s.
    assert store.downsample(t0 + HOUR_NS + 30 * SECOND) == 61
    assert store.rolled_up_until() == t0 + HOUR_NS
    assert store.downsample(t0 + HOUR_NS + 30 * SECOND) == 0
    store.write([pt("a1", "power", t0 + 5 * MINUTE_NS, 100.0)])  # late
    assert store.downsample(t0 + HOUR_NS) == 2
    # 30 more minutes and hour 1 (partial), then again from a later watermark.
    assert store.downsample(t0 + 3 * HOUR_NS) == 31
    assert store.rolled_up_until() == t0 + 3 * HOUR_NS


def test_rollup_queries_over_ranges_not_aligned_to_buckets_match_raw(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()
    store.write(
        [
            pt("a1", "power", t0 + i * 7 * SECOND, float((i * 13) % 17) / 4)
            for i in range(3 * 3600 // 7)
        ]
    )
    store.downsample(t0 + 2 * HOUR_NS + 23 * MINUTE_NS)
    start, end = t0 + 17 * MINUTE_NS + 3 * SECOND, t0 + 2 * HOUR_NS + 41 * MINUTE_NS + 9 * SECOND

    for resolution in ("1m", "1h"):
        for aggregate in AGGREGATES:
            q = SeriesQuery(
                ORG, ("a1",), ("power",), start, end, every_ns=HOUR_NS, aggregate=aggregate
            )
            rolled = SeriesQuery(
                ORG,
                ("a1",),
                ("power",),
                start,
                end,
                every_ns=HOUR_NS,
                aggregate=aggregate,
                resolution=resolution,
            )
            assert store.query(rolled) == store.query(q)


def test_delete_range_cutting_rolled_up_buckets_rolls_their_rest_again(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()
    store.write([pt("a1", "power", t0 + i * 10 * SECOND, float(i % 9)) for i in range(3 * 360)])
    store.downsample(t0 + 3 * HOUR_NS)

    store.delete_range(ORG, ["a1"], t0 + 20 * MINUTE_NS + 25 * SECOND, t0 + HOUR_NS + 35 * SECOND)

    for resolution in ("1m", "1h"):
        for aggregate in AGGREGATES:
            q = SeriesQuery(
                ORG,
                ("a1",),
                ("power",),
                t0,
                t0 + 3 * HOUR_NS,
                every_ns=HOUR_NS,
                aggregate=aggregate,
            )
            rolled = SeriesQuery(
                ORG,
                ("a1",),
                ("power",),
                t0,
                t0 + 3 * HOUR_NS,
                every_ns=HOUR_NS,
                aggregate=aggregate,
                resolution=resolution,
            )
            assert store.query(rolled) == store.query(q)


def test_apply_retention_says_how_many_rows_it_dropped_and_keeps_late_points_counted(
    open_store: Callable[..., SQLiteTelemetryStore], t0: int
) -> None:
    store = open_store()
    store.write([pt("a1", "power", t0 + i * 15 * MINUTE_NS, float(i)) for i in range(16)])
    store.downsample(t0 + 4 * HOUR_NS)
    store.write([pt("a1", "power", t0 + HOUR_NS + 20 * SECOND, 100.0)])  # late, in hour 1

    dropped = store.apply_retention(ORG, t0 + 2 * HOUR_NS, t0 + HOUR_NS)

    # raw: 8 points and the late one before t0 + 2h; rollups: hour 0's four minutes and
    # the hour itself
    assert dropped == 9 + 4 + 1
    hourly = SeriesQuery(
        ORG,
        ("a1",),
        ("power",),
        t0,
        t0 + 4 * HOUR_NS,
        every_ns=HOUR_NS,
        aggregate="sum",
        resolution="1h",
    )
    assert store.query(hourly) == [
        Series("a1", "power", [t0 + h * HOUR_NS for h in (1, 2, 3)], [122.0, 38.0, 54.0])
    ]
    assert store.downsample(t0 + 4 * HOUR_NS) == 0  # the late point was rolled already


# -- size ----------------------------------------------------------------------------


def test_bytes_per_point_reported(
    open_store: Callable[..., SQLiteTelemetryStore],
    path: Path,
    t0: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = open_store()
    assets, metrics, per_batch = 50, 4, 5000
    seconds = per_batch // (assets * metrics)
    batches = [
        [
            pt(f"asset-{a:03d}", f"metric-{m}", t0 + (b * seconds + s) * SECOND, s * 0.5)
            for s in range(seconds)
            for a in range(assets)
            for m in range(metrics)
        ]
        for b in range(20)
    ]
    started = time.perf_counter()
    for batch in batches:
        store.write(batch)
    elapsed = time.perf_counter() - started
    store.close()

    points = len(batches) * per_batch
    size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    with capsys.disabled():
        print(
            f"\nSQLite telemetry: {points} points in batches of {per_batch}: "
            f"{size / points:.1f} bytes/point, {points / elapsed:,.0f} points/s"
        )
    assert size > 0

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

Modules: ``sql`` holds the schema, the statements and the bucket arithmetic; ``connections``
the writer thread, its queue and the pool of read connections; ``store`` the
``SQLiteTelemetryStore`` class and its rollup jobs.
"""

from outpost.telemetry.sqlite_store.connections import IDLE_READERS
from outpost.telemetry.sqlite_store.sql import SCHEMA_VERSION, WATERMARK_KEY
from outpost.telemetry.sqlite_store.store import SQLiteTelemetryStore

__all__ = ["IDLE_READERS", "SCHEMA_VERSION", "WATERMARK_KEY", "SQLiteTelemetryStore"]

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

Modules: ``syntax`` holds the reserved measurement names and the line protocol and
InfluxQL text; ``client`` the HTTP client and how InfluxDB's answers map to errors;
``rollups`` the partial aggregates and the downsampling bookkeeping; ``store`` the
``InfluxTelemetryStore`` class.
"""

from outpost.telemetry.influx_store.client import InfluxError
from outpost.telemetry.influx_store.rollups import (
    MARKER_GRACE_NS,
    MARKER_KEEP_NS,
    ROLLUP_CHUNK_HOURS,
)
from outpost.telemetry.influx_store.store import InfluxTelemetryStore
from outpost.telemetry.influx_store.syntax import (
    MAX_BODY_BYTES,
    MAX_MARKER_BYTES,
    META,
    RESERVED_PREFIX,
    ROLLUPS,
)

__all__ = [
    "MARKER_GRACE_NS",
    "MARKER_KEEP_NS",
    "MAX_BODY_BYTES",
    "MAX_MARKER_BYTES",
    "META",
    "RESERVED_PREFIX",
    "ROLLUPS",
    "ROLLUP_CHUNK_HOURS",
    "InfluxError",
    "InfluxTelemetryStore",
]

"""The time-series store: one small protocol, an embedded and a production engine.

Times are integers of nanoseconds since the Unix epoch (UTC); every value is stored as
a float (booleans as 0.0 / 1.0). A point is identified by (organization, asset,
metric, time): writing it again replaces it, so duplicate deliveries are idempotent.

``write`` returns only once the points are durable (SQLite committed, InfluxDB
answered 204); it raises ``StoreOverloaded`` when the store cannot take more now and
``StoreUnavailable`` when it cannot be reached. Nothing of a refused batch is
acknowledged, so a client may resend it as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from outpost.settings import Settings

#: The aggregate of each window, per asset.
Aggregate = Literal["mean", "min", "max", "sum", "count", "first", "last"]
AGGREGATES: Final[tuple[Aggregate, ...]] = ("mean", "min", "max", "sum", "count", "first", "last")
#: How per-asset window values are combined across assets (None: one series per asset).
Across = Literal["sum", "mean", "min", "max"]
ACROSS: Final[tuple[Across, ...]] = ("sum", "mean", "min", "max")
#: What a query reads: raw points, or the 1-minute or 1-hour rollups.
Resolution = Literal["raw", "1m", "1h"]

NS_PER_SECOND: Final = 1_000_000_000
MINUTE_NS: Final = 60 * NS_PER_SECOND
HOUR_NS: Final = 60 * MINUTE_NS
RESOLUTION_NS: Final[dict[Resolution, int]] = {"raw": 1, "1m": MINUTE_NS, "1h": HOUR_NS}
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(moment: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch, exactly (no float rounding)."""
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


class StoreOverloaded(Exception):
    """The store cannot take more points right now; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(Exception):
    """The store could not be reached or failed; nothing of the request was acknowledged."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Point(NamedTuple):
    """One stored value (a tuple: millions are made per second on the hot path)."""

    org_id: str
    asset_id: str
    metric: str
    time_ns: int
    value: float


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """Points of ``metrics`` for ``asset_ids`` in ``[start_ns, end_ns)``.

    ``every_ns`` None returns raw points (``resolution`` must be "raw"). Otherwise each
    asset's points are aggregated in windows of ``every_ns`` aligned to the epoch, the
    window's time being its start; empty windows are left out. With ``across`` set, the
    per-asset window values are then combined across assets into one series per metric
    (``asset_id`` None). ``resolution`` says what to read: raw points, or the 1-minute /
    1-hour rollups (``every_ns`` is then a multiple of it); a rollup store reads raw
    points for the part of the range not rolled up yet. At most ``limit`` points come
    back in all (the caller checks the count beforehand).
    """

    org_id: str
    asset_ids: tuple[str, ...]
    metrics: tuple[str, ...]
    start_ns: int
    end_ns: int
    every_ns: int | None = None
    aggregate: Aggregate = "mean"
    across: Across | None = None
    resolution: Resolution = "raw"
    limit: int = 100_000


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a query's result, times ascending."""

    asset_id: str | None
    metric: str
    times_ns: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest value of one metric of one asset."""

    asset_id: str
    metric: str
    time_ns: int
    value: float


class TelemetryStore(Protocol):
    def write(self, points: Sequence[Point]) -> None:
        """Store ``points`` durably, replacing any with the same key; all or nothing."""
        ...

    def query(self, query: SeriesQuery) -> list[Series]:
        """The series of ``query``, ordered by metric then asset (``asset_ids`` order)."""
        ...

    def latest(
        self, org_id: str, asset_ids: Sequence[str], metrics: Sequence[str] | None = None
    ) -> list[Reading]:
        """The most recent raw point of each (asset, metric) that has one, ordered by
        asset (``asset_ids`` order) then metric (``metrics`` order; by name when
        ``metrics`` is None, which means every metric)."""
        ...

    def delete_range(
        self, org_id: str, asset_ids: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> None:
        """Delete raw points and rollups in ``[start_ns, end_ns)`` (all the org's assets
        when ``asset_ids`` is None)."""
        ...

    def apply_retention(self, org_id: str, raw_before_ns: int, rollups_before_ns: int) -> int:
        """Drop the org's raw points older than ``raw_before_ns`` and rollups older than
        ``rollups_before_ns``; return how many rows (or series) were dropped, if known."""
        ...

    def downsample(self, until_ns: int) -> int:
        """Roll raw points before ``until_ns`` up into 1-minute and 1-hour rollups
        (complete buckets only, and again any bucket a late point fell into); return
        how many rollup rows were written."""
        ...

    def rolled_up_until(self) -> int:
        """The time before which the rollups are complete (0: nothing rolled up yet)."""
        ...

    def close(self) -> None: ...


StoreFactory = Callable[["Settings"], TelemetryStore]


def _sqlite(settings: Settings) -> TelemetryStore:
    from outpost.telemetry.sqlite_store import SQLiteTelemetryStore

    return SQLiteTelemetryStore(
        settings.telemetry_path, queue_points=settings.telemetry_queue_points
    )


def _influxdb(settings: Settings) -> TelemetryStore:
    from outpost.telemetry.influx_store import InfluxTelemetryStore

    return InfluxTelemetryStore(
        settings.influx_url,
        database=settings.influx_database,
        username=settings.influx_username,
        password=settings.influx_password,
    )


STORES: Final[dict[str, StoreFactory]] = {"sqlite": _sqlite, "influxdb": _influxdb}


def open_telemetry_store(settings: Settings) -> TelemetryStore:
    factory = STORES.get(settings.telemetry_store)
    if factory is None:
        raise ValueError(
            f"OUTPOST_TELEMETRY_STORE must be one of {', '.join(STORES)}, "
            f"not {settings.telemetry_store!r}"
        )
    return factory(settings)

"""What a telemetry query may ask for, and the rules that refuse it.

The limits of one query (assets, points, raw ranges, ``every``), its times (exact
nanoseconds, ISO 8601 text, the ``every`` grammar, which resolution a window reads, how
many windows a range touches), and the pure checks that turn a request into
``Violation``s: the time range, the raw-point ranges and retention, the point cap and
the metrics the assets declare. ``query.py`` runs a query with these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from outpost.telemetry.metrics import ALL_METRIC_NAMES, METRICS, Metric
from outpost.telemetry.schemas import TelemetryQuery
from outpost.telemetry.store import EPOCH, HOUR_NS, MINUTE_NS, NS_PER_SECOND, Resolution, to_ns
from outpost.validation import Violation

#: The most assets one query or latest-values call may name (directly or through a site).
MAX_ASSETS: Final = 1000
#: The most points one query may return.
MAX_POINTS: Final = 100_000
#: The longest range of raw points (no ``every``), and of windows computed from raw points.
RAW_POINTS_MAX_RANGE: Final = timedelta(hours=24)
RAW_WINDOWS_MAX_RANGE: Final = timedelta(days=7)
#: The longest window.
MAX_EVERY: Final = timedelta(days=366)
DEFAULT_RANGE: Final = timedelta(hours=24)
#: How far past now a query may end (devices' clocks drift).
FUTURE_SLACK: Final = timedelta(minutes=10)

_EVERY = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# --- times ------------------------------------------------------------------------------


def format_ns(time_ns: int) -> str:
    """ISO 8601 UTC with a ``Z``; fractions of a second only when there are some."""
    seconds, fraction = divmod(time_ns, NS_PER_SECOND)
    text = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def format_time(moment: datetime) -> str:
    return format_ns(to_ns(moment.astimezone(UTC)))


def parse_every(text: str) -> timedelta:
    """``10s``, ``1m``, ``15m``, ``1h``, ``1d``: a whole number and a unit."""
    match = _EVERY.fullmatch(text)
    if match is None:
        raise ValueError(f"every must be a whole number and s, m, h or d (e.g. 15m), not {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def resolution_for(every_ns: int | None) -> Resolution:
    """Which data a window of ``every_ns`` is computed from: the coarsest rollup that
    divides it, else the raw points."""
    if every_ns is None:
        return "raw"
    if every_ns % HOUR_NS == 0:
        return "1h"
    if every_ns % MINUTE_NS == 0:
        return "1m"
    return "raw"


def window_count(start_ns: int, end_ns: int, every_ns: int) -> int:
    """The epoch-aligned windows of ``every_ns`` that ``[start_ns, end_ns)`` touches."""
    return (end_ns - 1) // every_ns - start_ns // every_ns + 1


class TelemetryAsset(NamedTuple):
    """What a query needs of an asset (read as plain columns: no ORM object per asset)."""

    id: str
    type: str
    name: str
    site_id: str


# --- metrics ----------------------------------------------------------------------------


def declared_metrics(assets: Sequence[TelemetryAsset]) -> dict[str, Metric]:
    """Metric name -> its declaration, for every metric the assets' types declare, in the
    order of the assets and their types' declarations."""
    declared: dict[str, Metric] = {}
    for asset_type in dict.fromkeys(asset.type for asset in assets):
        for metric in METRICS.get(asset_type, ()):
            declared.setdefault(metric.name, metric)
    return declared


def check_metrics(assets: Sequence[TelemetryAsset], names: Sequence[str]) -> list[Violation]:
    """A named metric must be declared by the type of at least one of the assets (by some
    type at all, when the selection holds no asset)."""
    declared = declared_metrics(assets)
    known = declared.keys() if assets else ALL_METRIC_NAMES
    return [
        Violation(
            "telemetry.unknown_metric",
            f"No asset of the query declares the metric {name!r}"
            + (f" (they declare {', '.join(declared)})." if declared else "."),
            "metric",
        )
        for name in dict.fromkeys(names)
        if name not in known
    ]


# --- range and caps ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryWindow:
    start: datetime
    end: datetime
    every: timedelta | None


def parse_window(q: TelemetryQuery, now: datetime, problems: list[Violation]) -> QueryWindow | None:
    every: timedelta | None = None
    if q.every is not None:
        every = parse_every(q.every)
        if every > MAX_EVERY:
            problems.append(
                Violation("telemetry.every_too_long", "every is at most 366d.", "every")
            )
    try:
        end = q.end.astimezone(UTC) if q.end is not None else now
        start = q.start.astimezone(UTC) if q.start is not None else end - DEFAULT_RANGE
    except OverflowError:
        problems.append(
            Violation("telemetry.time_out_of_range", "A time is out of range.", "start")
        )
        return None
    if start < EPOCH:
        problems.append(
            Violation("telemetry.start_before_epoch", "start is before 1970-01-01.", "start")
        )
    if end <= start:
        problems.append(Violation("telemetry.end_before_start", "end must be after start.", "end"))
    if end > now + FUTURE_SLACK:
        problems.append(
            Violation(
                "telemetry.end_in_future",
                f"end is more than 10 minutes in the future (now is {format_time(now)}).",
                "end",
            )
        )
    return QueryWindow(start, end, every)


def check_raw_window(
    window: QueryWindow, raw_days: int, now: datetime, *, points: bool
) -> list[Violation]:
    problems = []
    cap = RAW_POINTS_MAX_RANGE if points else RAW_WINDOWS_MAX_RANGE
    if window.end - window.start > cap:
        what = (
            "Raw points are read over at most 24 hours"
            if points
            else (
                "Windows shorter than a minute (or not a whole number of minutes) are computed "
                "from raw points, over at most 7 days"
            )
        )
        problems.append(
            Violation(
                "telemetry.raw_range_too_long",
                f"{what}: shorten the range, or ask for every=1m (or longer) to read rollups.",
                "start",
            )
        )
    horizon = now - timedelta(days=raw_days)
    if window.start < horizon:
        problems.append(
            Violation(
                "telemetry.before_raw_retention",
                f"Raw points are kept for {raw_days} days (since {format_time(horizon)}): "
                "start later, or ask for every=1m (or longer) to read rollups.",
                "start",
            )
        )
    return problems


def too_many_points(count: int | None) -> Violation:
    size = f"up to {count:,}" if count is not None else "more than"
    return Violation(
        "telemetry.too_many_points",
        f"The query would return {size} points, over the limit of {MAX_POINTS:,}: use a "
        "longer every, a shorter range, fewer metrics or assets, or combine the assets "
        "with across=sum|mean|min|max.",
        "every",
    )

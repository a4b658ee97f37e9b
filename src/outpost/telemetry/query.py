"""Telemetry reads: time-series queries, latest values and the metric declarations.

Every entry point (the JSON API, the CSV export, the pages' JSON) calls these functions,
so one set of rules decides which assets a caller reaches and what a query may cost:

- Assets are named by id (``asset``, repeatable) and/or by ``site`` (optionally one asset
  ``type``), looked up in the caller's organization and filtered in SQL by the reach of
  ``telemetry.read``: an asset out of reach is answered like a missing one (404), and so
  is a site the caller cannot see. At most ``MAX_ASSETS`` assets per query.
- Metrics must be declared by the type of at least one of the assets (``metrics.py``);
  none named: every metric the assets declare.
- The resolution follows ``every``: a multiple of an hour reads the 1-hour rollups, a
  multiple of a minute the 1-minute rollups, anything else (or no ``every``: raw
  points) the raw points, which are refused over long ranges and before the
  organization's raw retention horizon.
- The result is estimated (series x windows) before the store is asked, and refused
  over ``MAX_POINTS``; raw points, which cannot be estimated, are counted as they come.

Every refusal is a ``RuleViolation`` listing all the violations found, with stable codes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from outpost.clock import utcnow
from outpost.errors import NotFound, RuleViolation, ServiceUnavailable
from outpost.identity.authz import Reach, can, require_somewhere
from outpost.identity.models import Organization
from outpost.identity.principal import Principal
from outpost.identity.roles import Permission
from outpost.inventory import scopes
from outpost.inventory.models import Asset, Site
from outpost.telemetry.metrics import ALL_METRIC_NAMES, METRICS, Metric, find_metric
from outpost.telemetry.schemas import AssetSelection, TelemetryQuery
from outpost.telemetry.store import (
    HOUR_NS,
    MINUTE_NS,
    NS_PER_SECOND,
    Across,
    Aggregate,
    Resolution,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
    TelemetryStore,
)
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
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_EVERY = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}

ValueType = Literal["float", "int", "bool"]
Value = float | int | bool | None


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesResult:
    asset_id: str | None
    metric: str
    unit: str
    value_type: ValueType
    times_ns: list[int]
    values: list[Value]

    def points(self) -> list[tuple[str, Value]]:
        return [(format_ns(t), v) for t, v in zip(self.times_ns, self.values, strict=True)]


@dataclass(frozen=True, slots=True)
class QueryResult:
    start: datetime
    end: datetime
    every: str | None
    aggregate: Aggregate
    across: Across | None
    resolution: Resolution
    series: list[SeriesResult]

    def as_dict(self) -> dict[str, object]:
        return {
            "start": format_time(self.start),
            "end": format_time(self.end),
            "every": self.every,
            "aggregate": self.aggregate,
            "across": self.across,
            "resolution": self.resolution,
            "series": [
                {
                    "asset_id": s.asset_id,
                    "metric": s.metric,
                    "unit": s.unit,
                    "value_type": s.value_type,
                    "points": s.points(),
                }
                for s in self.series
            ],
        }

    @property
    def point_count(self) -> int:
        return sum(len(s.times_ns) for s in self.series)


@dataclass(frozen=True, slots=True)
class LatestReading:
    asset_id: str
    metric: str
    unit: str
    value_type: ValueType
    time_ns: int
    value: Value

    def as_dict(self) -> dict[str, object]:
        return {
            "asset_id": self.asset_id,
            "metric": self.metric,
            "unit": self.unit,
            "value_type": self.value_type,
            "time": format_ns(self.time_ns),
            "value": self.value,
        }


@dataclass(frozen=True, slots=True)
class LatestResult:
    assets: list[Asset]
    readings: list[LatestReading]

    def as_dict(self) -> dict[str, object]:
        return {
            "assets": [
                {"id": a.id, "name": a.name, "type": a.type, "site_id": a.site_id}
                for a in self.assets
            ],
            "readings": [r.as_dict() for r in self.readings],
        }


# --- times ------------------------------------------------------------------------------


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exactly (no float rounding)."""
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


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


# --- values -----------------------------------------------------------------------------

_KEEPS_TYPE: Final[frozenset[str]] = frozenset({"first", "last", "min", "max"})


def value_type_of(metric: Metric, aggregate: Aggregate | None, across: Across | None) -> ValueType:
    """How a series' values are rendered: booleans stay booleans (and integers integers)
    only while every step keeps a reading's own value (raw points, first/last/min/max,
    and integer sums); a count is an integer; means are floats."""
    if aggregate is None:  # raw points
        return metric.value_type
    if aggregate == "count":
        return "int" if across in (None, "sum", "min", "max") else "float"
    if metric.value_type == "bool":
        return "bool" if aggregate in _KEEPS_TYPE and across in (None, "min", "max") else "float"
    if metric.value_type == "int":
        keeps = aggregate in _KEEPS_TYPE | {"sum"} and across in (None, "sum", "min", "max")
        return "int" if keeps else "float"
    return "float"


def _renderer(value_type: ValueType) -> Callable[[float], Value]:
    def render(value: float) -> Value:
        if not math.isfinite(value):
            return None
        if value_type == "bool":
            return value >= 0.5
        if value_type == "int":
            return round(value)
        return value

    return render


# --- which assets and metrics -----------------------------------------------------------


def _telemetry_site_visible(session: Session, principal: Principal, site_id: str) -> bool:
    return can(
        principal, Permission.TELEMETRY_READ, scopes.site_scope(site_id)
    ) or scopes.can_see_site(session, principal, site_id)


def resolve_assets(
    session: Session, principal: Principal, selection: AssetSelection
) -> list[Asset]:
    """The assets ``selection`` names that the caller may read telemetry of: the named ids
    in their order, then the site's assets by name. A named asset out of reach, or a site
    the caller cannot see, is NotFound."""
    found_reach = require_somewhere(principal, Permission.TELEMETRY_READ)
    problems: list[Violation] = []
    if not selection.asset and selection.site is None:
        problems.append(
            Violation(
                "telemetry.no_assets",
                "Name the assets: asset=<id> (repeatable) and/or site=<id>.",
                "asset",
            )
        )
    if selection.type is not None and selection.site is None:
        problems.append(
            Violation(
                "telemetry.type_without_site", "type filters a site's assets: add site.", "type"
            )
        )
    if problems:
        raise RuleViolation(problems, "The query does not say which assets to read.")
    chosen: dict[str, Asset] = {}
    if selection.asset:
        chosen.update(_named_assets(session, principal, found_reach, selection.asset))
    if selection.site is not None:
        for asset in _site_assets(session, principal, found_reach, selection):
            chosen.setdefault(asset.id, asset)
    if len(chosen) > MAX_ASSETS:
        raise RuleViolation(
            [
                Violation(
                    "telemetry.too_many_assets",
                    f"The query names more than {MAX_ASSETS:,} assets; narrow it with type= "
                    "or name fewer assets.",
                    "asset",
                )
            ],
            f"A query reads at most {MAX_ASSETS:,} assets.",
        )
    return list(chosen.values())


def _named_assets(
    session: Session, principal: Principal, found_reach: Reach, asset_ids: Sequence[str]
) -> dict[str, Asset]:
    wanted = list(dict.fromkeys(asset_ids))
    rows = session.scalars(
        select(Asset).where(
            Asset.org_id == principal.org_id,
            Asset.id.in_(wanted),
            scopes.assets_within(found_reach),
        )
    )
    found = {asset.id: asset for asset in rows}
    for asset_id in wanted:
        if asset_id not in found:
            raise NotFound(f"No asset {asset_id}.")
    return {asset_id: found[asset_id] for asset_id in wanted}


def _site_assets(
    session: Session, principal: Principal, found_reach: Reach, selection: AssetSelection
) -> list[Asset]:
    site_id = selection.site
    site = session.scalar(
        select(Site.id).where(Site.id == site_id, Site.org_id == principal.org_id)
    )
    if site is None or not _telemetry_site_visible(session, principal, site):
        raise NotFound(f"No site {site_id}.")
    query = select(Asset).where(
        Asset.org_id == principal.org_id,
        Asset.site_id == site,
        scopes.assets_within(found_reach),
    )
    if selection.type is not None:
        query = query.where(Asset.type == selection.type)
    return list(session.scalars(query.order_by(Asset.name, Asset.id).limit(MAX_ASSETS + 1)))


def _declared(assets: Sequence[Asset]) -> dict[str, Metric]:
    """Metric name -> its declaration, for every metric the assets' types declare, in the
    order of the assets and their types' declarations."""
    declared: dict[str, Metric] = {}
    for asset_type in dict.fromkeys(asset.type for asset in assets):
        for metric in METRICS.get(asset_type, ()):
            declared.setdefault(metric.name, metric)
    return declared


def check_metrics(assets: Sequence[Asset], names: Sequence[str]) -> list[Violation]:
    """A named metric must be declared by the type of at least one of the assets (by some
    type at all, when the selection holds no asset)."""
    declared = _declared(assets)
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


def _chosen_metrics(assets: Sequence[Asset], names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names)) if names else list(_declared(assets))


def _pairs(assets: Sequence[Asset], metrics: Sequence[str]) -> list[tuple[str, Asset, Metric]]:
    """(metric, asset, declaration) for each asset that declares each metric: metric first,
    then the assets in order (the store's order)."""
    pairs = []
    for name in metrics:
        for asset in assets:
            metric = find_metric(asset.type, name)
            if metric is not None:
                pairs.append((name, asset, metric))
    return pairs


# --- queries ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime
    end: datetime
    every: timedelta | None


def _window(q: TelemetryQuery, now: datetime, problems: list[Violation]) -> _Window | None:
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
    return _Window(start, end, every)


def _raw_violations(
    window: _Window, raw_days: int, now: datetime, *, points: bool
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


def _too_many_points(count: int | None) -> Violation:
    size = f"up to {count:,}" if count is not None else "more than"
    return Violation(
        "telemetry.too_many_points",
        f"The query would return {size} points, over the limit of {MAX_POINTS:,}: use a "
        "longer every, a shorter range, fewer metrics or assets, or combine the assets "
        "with across=sum|mean|min|max.",
        "every",
    )


def query_telemetry(
    session: Session, store: TelemetryStore, principal: Principal, q: TelemetryQuery
) -> QueryResult:
    """The series ``q`` asks for (see the module's docstring for the rules)."""
    assets = resolve_assets(session, principal, q)
    now = utcnow()
    problems = check_metrics(assets, q.metric)
    window = _window(q, now, problems)
    if q.every is None and q.across is not None:
        problems.append(
            Violation(
                "telemetry.across_needs_every",
                "across combines windows: add every (e.g. every=1m).",
                "across",
            )
        )
    if q.every is None and "aggregate" in q.model_fields_set:
        problems.append(
            Violation(
                "telemetry.aggregate_needs_every",
                "aggregate applies to windows: add every (e.g. every=1m).",
                "aggregate",
            )
        )
    if window is None:
        raise RuleViolation(problems, "The query is not valid.")
    every_ns = window.every // timedelta(microseconds=1) * 1000 if window.every else None
    resolution = resolution_for(every_ns)
    if resolution == "raw" and not problems:
        org = session.get(Organization, principal.org_id)
        raw_days = org.telemetry_raw_days if org is not None else 30
        problems += _raw_violations(window, raw_days, now, points=every_ns is None)
    metrics = _chosen_metrics(assets, q.metric)
    pairs = _pairs(assets, metrics)
    start_ns, end_ns = to_ns(window.start), to_ns(window.end)
    if every_ns is not None and not problems:
        series_count = len({name for name, _, _ in pairs}) if q.across else len(pairs)
        estimate = series_count * window_count(start_ns, end_ns, every_ns)
        if estimate > MAX_POINTS:
            problems.append(_too_many_points(estimate))
    if problems:
        raise RuleViolation(problems, "The query is not valid.")
    aggregate: Aggregate | None = q.aggregate if every_ns is not None else None
    result_series = _run(
        store,
        SeriesQuery(
            org_id=principal.org_id,
            asset_ids=tuple(dict.fromkeys(asset.id for _, asset, _ in pairs)),
            metrics=tuple(dict.fromkeys(name for name, _, _ in pairs)),
            start_ns=start_ns,
            end_ns=end_ns,
            every_ns=every_ns,
            aggregate=q.aggregate,
            across=q.across,
            resolution=resolution,
            limit=MAX_POINTS + 1,
        ),
        pairs,
        aggregate,
        q.across,
    )
    result = QueryResult(
        window.start,
        window.end,
        q.every,
        q.aggregate,
        q.across,
        resolution,
        result_series,
    )
    if result.point_count > MAX_POINTS:
        raise RuleViolation([_too_many_points(None)], "The query is not valid.")
    return result


def _run(
    store: TelemetryStore,
    query: SeriesQuery,
    pairs: Sequence[tuple[str, Asset, Metric]],
    aggregate: Aggregate | None,
    across: Across | None,
) -> list[SeriesResult]:
    """Ask the store, and give every declared (metric, asset) pair its series (empty when
    there is no data), typed and in the store's order."""
    if not pairs:
        return []
    found = {(s.metric, s.asset_id): s for s in _guarded(lambda: store.query(query))}
    wanted: list[tuple[str, str | None, Metric]] = []
    if across is not None:
        wanted = [
            (name, None, metric) for name, metric in dict((n, m) for n, _, m in pairs).items()
        ]
    else:
        wanted = [(name, asset.id, metric) for name, asset, metric in pairs]
    out = []
    for name, asset_id, metric in wanted:
        value_type = value_type_of(metric, aggregate, across)
        render = _renderer(value_type)
        series = found.get((name, asset_id))
        times = list(series.times_ns) if series else []
        values = [render(v) for v in series.values] if series else []
        out.append(SeriesResult(asset_id, name, metric.unit, value_type, times, values))
    return out


T = TypeVar("T")


def _guarded(call: Callable[[], T]) -> T:
    try:
        return call()
    except (StoreUnavailable, StoreOverloaded) as exc:
        raise ServiceUnavailable(
            f"The telemetry store cannot answer now: {exc}", exc.retry_after
        ) from exc


def latest_values(
    session: Session, store: TelemetryStore, principal: Principal, selection: AssetSelection
) -> LatestResult:
    """The most recent reading of each (asset, metric) of the selection that has one, for
    dashboards: at most ``MAX_ASSETS`` assets at once, in one store call."""
    assets = resolve_assets(session, principal, selection)
    problems = check_metrics(assets, selection.metric)
    if problems:
        raise RuleViolation(problems, "The query is not valid.")
    metrics = _chosen_metrics(assets, selection.metric)
    pairs = _pairs(assets, metrics)
    if not pairs:
        return LatestResult(assets, [])
    asset_ids = list(dict.fromkeys(asset.id for _, asset, _ in pairs))
    readings = _guarded(lambda: store.latest(principal.org_id, asset_ids, metrics))
    by_key = {(r.asset_id, r.metric): r for r in readings}
    out = []
    for asset in assets:  # asset order, then the type's declaration order
        for name in metrics:
            metric = find_metric(asset.type, name)
            reading = by_key.get((asset.id, name))
            if metric is None or reading is None:
                continue
            out.append(
                LatestReading(
                    asset.id,
                    name,
                    metric.unit,
                    metric.value_type,
                    reading.time_ns,
                    _renderer(metric.value_type)(reading.value),
                )
            )
    return LatestResult(assets, out)


def metric_declarations(
    principal: Principal, asset_type: str | None = None
) -> list[tuple[str, tuple[Metric, ...]]]:
    """What each asset type measures (one type, or all)."""
    require_somewhere(principal, Permission.TELEMETRY_READ)
    if asset_type is not None and asset_type not in METRICS:
        raise RuleViolation(
            [
                Violation(
                    "telemetry.unknown_type",
                    f"No asset type {asset_type!r} declares metrics (known: {', '.join(METRICS)}).",
                    "type",
                )
            ]
        )
    return [(name, metrics) for name, metrics in METRICS.items() if asset_type in (None, name)]


# --- CSV --------------------------------------------------------------------------------

CSV_HEADER: Final = "time,asset_id,metric,value\r\n"


def _csv_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def csv_lines(result: QueryResult) -> Iterator[str]:
    """The result as CSV (RFC 4180 line ends), one row per point, the header first."""
    yield CSV_HEADER
    for series in result.series:
        asset = series.asset_id or ""
        for time_ns, value in zip(series.times_ns, series.values, strict=True):
            yield f"{format_ns(time_ns)},{asset},{series.metric},{_csv_value(value)}\r\n"


# --- pages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteDashboard:
    site: Site
    latest: LatestResult
    #: The site's inverters the caller reaches (the dashboard charts their summed power).
    inverter_count: int


def site_dashboard(
    session: Session, store: TelemetryStore, principal: Principal, site_id: str
) -> SiteDashboard:
    """A site's latest values, for its telemetry dashboard."""
    latest = latest_values(session, store, principal, AssetSelection(site=site_id))
    site = session.scalar(select(Site).where(Site.id == site_id, Site.org_id == principal.org_id))
    if site is None:  # resolved above; gone since
        raise NotFound(f"No site {site_id}.")
    inverters = sum(1 for asset in latest.assets if asset.type == "inverter")
    return SiteDashboard(site, latest, inverters)

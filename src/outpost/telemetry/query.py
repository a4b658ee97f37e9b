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

The request's limits, times and checks live in ``query_request.py``, the result types,
value typing and CSV in ``query_results.py``; this module resolves the assets, asks the
store and assembles the results. Callers reach the whole query surface from here (see
``__all__``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

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
from outpost.telemetry.metrics import METRICS, Metric, find_metric
from outpost.telemetry.query_request import (
    MAX_ASSETS,
    MAX_POINTS,
    TelemetryAsset,
    check_metrics,
    check_raw_window,
    declared_metrics,
    format_ns,
    format_time,
    parse_every,
    parse_window,
    resolution_for,
    too_many_points,
    window_count,
)
from outpost.telemetry.query_results import (
    LatestReading,
    LatestResult,
    QueryResult,
    SeriesResult,
    Value,
    csv_lines,
    renderer_for,
    value_type_of,
)
from outpost.telemetry.schemas import AssetSelection, TelemetryQuery
from outpost.telemetry.store import (
    EPOCH,
    Across,
    Aggregate,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
    TelemetryStore,
    to_ns,
)
from outpost.validation import Violation

__all__ = [
    "EPOCH",
    "MAX_ASSETS",
    "MAX_POINTS",
    "LatestReading",
    "LatestResult",
    "QueryResult",
    "SeriesResult",
    "SiteDashboard",
    "Value",
    "check_metrics",
    "csv_lines",
    "format_ns",
    "format_time",
    "latest_values",
    "metric_declarations",
    "parse_every",
    "query_telemetry",
    "resolution_for",
    "resolve_assets",
    "site_dashboard",
    "to_ns",
    "window_count",
]

# --- which assets and metrics -----------------------------------------------------------


def _telemetry_site_visible(session: Session, principal: Principal, site_id: str) -> bool:
    return can(
        principal, Permission.TELEMETRY_READ, scopes.site_scope(site_id)
    ) or scopes.can_see_site(session, principal, site_id)


_COLUMNS = (Asset.id, Asset.type, Asset.name, Asset.site_id)


def resolve_assets(
    session: Session, principal: Principal, selection: AssetSelection
) -> list[TelemetryAsset]:
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
    chosen: dict[str, TelemetryAsset] = {}
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
) -> dict[str, TelemetryAsset]:
    wanted = list(dict.fromkeys(asset_ids))
    rows = session.execute(
        select(*_COLUMNS).where(
            Asset.org_id == principal.org_id,
            Asset.id.in_(wanted),
            scopes.assets_within(found_reach),
        )
    )
    found = {row[0]: TelemetryAsset(*row) for row in rows}
    for asset_id in wanted:
        if asset_id not in found:
            raise NotFound(f"No asset {asset_id}.")
    return {asset_id: found[asset_id] for asset_id in wanted}


def _site_assets(
    session: Session, principal: Principal, found_reach: Reach, selection: AssetSelection
) -> list[TelemetryAsset]:
    site_id = selection.site
    site = session.scalar(
        select(Site.id).where(Site.id == site_id, Site.org_id == principal.org_id)
    )
    if site is None or not _telemetry_site_visible(session, principal, site):
        raise NotFound(f"No site {site_id}.")
    query = select(*_COLUMNS).where(
        Asset.org_id == principal.org_id,
        Asset.site_id == site,
        scopes.assets_within(found_reach),
    )
    if selection.type is not None:
        query = query.where(Asset.type == selection.type)
    rows = session.execute(query.order_by(Asset.name, Asset.id).limit(MAX_ASSETS + 1))
    return [TelemetryAsset(*row) for row in rows]


def _chosen_metrics(assets: Sequence[TelemetryAsset], names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names)) if names else list(declared_metrics(assets))


def _pairs(
    assets: Sequence[TelemetryAsset], metrics: Sequence[str]
) -> list[tuple[str, TelemetryAsset, Metric]]:
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


def query_telemetry(
    session: Session, store: TelemetryStore, principal: Principal, q: TelemetryQuery
) -> QueryResult:
    """The series ``q`` asks for (see the module's docstring for the rules)."""
    assets = resolve_assets(session, principal, q)
    now = utcnow()
    problems = check_metrics(assets, q.metric)
    window = parse_window(q, now, problems)
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
        problems += check_raw_window(window, raw_days, now, points=every_ns is None)
    metrics = _chosen_metrics(assets, q.metric)
    pairs = _pairs(assets, metrics)
    start_ns, end_ns = to_ns(window.start), to_ns(window.end)
    if every_ns is not None and not problems:
        series_count = len({name for name, _, _ in pairs}) if q.across else len(pairs)
        estimate = series_count * window_count(start_ns, end_ns, every_ns)
        if estimate > MAX_POINTS:
            problems.append(too_many_points(estimate))
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
        raise RuleViolation([too_many_points(None)], "The query is not valid.")
    return result


def _run(
    store: TelemetryStore,
    query: SeriesQuery,
    pairs: Sequence[tuple[str, TelemetryAsset, Metric]],
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
        render = renderer_for(value_type)
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
                    renderer_for(metric.value_type)(reading.value),
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

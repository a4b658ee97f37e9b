"""Telemetry pages: a site's dashboard, and the same-origin JSON the pages' charts fetch.

The JSON API takes bearer tokens only; a logged-in page fetches ``/telemetry/query`` and
``/telemetry/latest`` instead, which take the session cookie and call the same service
functions with the same parameters (and offer the same CSV download). The asset page's
chart is ``_asset_chart.html``, included by the inventory template; the
``telemetry_metrics`` template global tells it what the asset's type measures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, jsonify, render_template

from outpost.clock import utcnow
from outpost.telemetry import query as telemetry
from outpost.telemetry.api import csv_response, run_query, wants_csv
from outpost.telemetry.metrics import metrics_of
from outpost.telemetry.schemas import LatestQuery, TelemetryQuery
from outpost.web.context import principal, services, transaction
from outpost.web.openapi import parse_query

bp = Blueprint("telemetry_pages", __name__, template_folder="templates")

#: The window of the pages' day charts: 288 points a day, read from the 1-minute rollups.
CHART_EVERY = "5m"
REFRESH_SECONDS = 10


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(time_ns: int, zone_name: str) -> str:
    """``2026-11-23 11:05:00`` in the site's time zone."""
    moment = telemetry.EPOCH + timedelta(microseconds=time_ns // 1000)
    return moment.astimezone(_zone(zone_name)).strftime("%Y-%m-%d %H:%M:%S")


def display_value(value: telemetry.Value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def _day_start(zone_name: str, now: datetime) -> datetime:
    """Midnight today in the site's time zone, in UTC."""
    local = now.astimezone(_zone(zone_name))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@bp.app_context_processor
def _telemetry_globals() -> dict[str, Any]:
    def telemetry_metrics(asset_type: str) -> list[dict[str, object]]:
        return [metric.as_dict() for metric in metrics_of(asset_type)]

    return {"telemetry_metrics": telemetry_metrics}


@bp.get("/sites/<site_id>/telemetry")
def site_dashboard(site_id: str) -> str:
    with transaction() as session:
        board = telemetry.site_dashboard(session, services().telemetry, principal(), site_id)
        names = {asset.id: asset for asset in board.latest.assets}
        return render_template(
            "telemetry/site_dashboard.html",
            board=board,
            site=board.site,
            assets=names,
            local_time=local_time,
            display_value=display_value,
            day_start=telemetry.format_time(_day_start(board.site.timezone, utcnow())),
            every=CHART_EVERY,
            refresh=REFRESH_SECONDS,
        )


@bp.get("/telemetry/query")
def query_json() -> Response:
    """``GET /api/v1/telemetry/query`` for the session's pages (same parameters)."""
    query = parse_query(TelemetryQuery)
    result = run_query(query)
    if wants_csv(query.format):
        return csv_response(result, "telemetry")
    return jsonify(result.as_dict())


@bp.get("/telemetry/latest")
def latest_json() -> Response:
    """``GET /api/v1/telemetry/latest`` for the session's pages (same parameters)."""
    selection = parse_query(LatestQuery)
    with transaction() as session:
        result = telemetry.latest_values(session, services().telemetry, principal(), selection)
        return jsonify(result.as_dict())

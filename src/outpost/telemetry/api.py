"""Telemetry read API: ``/api/v1/telemetry/query`` (JSON or CSV), ``/latest``, ``/metrics``.

Ingestion (``POST /api/v1/telemetry``, ``/api/v1/write``) lives in ``ingest_api.py``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from outpost.telemetry import query as telemetry
from outpost.telemetry.schemas import (
    LatestOut,
    LatestQuery,
    MetricsOut,
    MetricsQuery,
    QueryOut,
    TelemetryQuery,
)
from outpost.web.context import principal, release_request_session, services, transaction
from outpost.web.openapi import endpoint

bp = Blueprint("telemetry", __name__, url_prefix="/api/v1")

READ_ERRORS = {
    422: "The query breaks a rule (unknown metric, range, resolution or size)",
    503: "The telemetry store cannot answer now",
}
CSV = "text/csv"


def wants_csv(fmt: str | None) -> bool:
    """``format=csv``, or (no format) an Accept header that prefers CSV to JSON."""
    if fmt is not None:
        return fmt == "csv"
    return request.accept_mimetypes.best_match(("application/json", CSV)) == CSV


def csv_response(result: telemetry.QueryResult, stem: str) -> Response:
    response = Response("".join(telemetry.csv_lines(result)), mimetype=CSV)
    start = telemetry.format_time(result.start).replace(":", "")
    end = telemetry.format_time(result.end).replace(":", "")
    response.headers["Content-Disposition"] = f'attachment; filename="{stem}_{start}_{end}.csv"'
    return response


def run_query(query: TelemetryQuery) -> telemetry.QueryResult:
    """Resolve the assets in the request's transaction, then read the store without it."""
    with transaction() as session:
        result = telemetry.query_telemetry(session, services().telemetry, principal(), query)
    release_request_session()
    return result


@bp.get("/telemetry/query")
@endpoint(
    summary="Query time series: raw points or windows (JSON; CSV with format=csv or "
    "Accept: text/csv)",
    tag="telemetry",
    query=TelemetryQuery,
    response=QueryOut,
    content_types=("application/json", CSV),
    extra_responses=READ_ERRORS,
)
def query(query: TelemetryQuery) -> Response:
    result = run_query(query)
    if wants_csv(query.format):
        return csv_response(result, "telemetry")
    return jsonify(result.as_dict())


@bp.get("/telemetry/latest")
@endpoint(
    summary="The latest reading of each metric of many assets",
    tag="telemetry",
    query=LatestQuery,
    response=LatestOut,
    extra_responses=READ_ERRORS,
)
def latest(query: LatestQuery) -> Response:
    with transaction() as session:
        result = telemetry.latest_values(session, services().telemetry, principal(), query)
        return jsonify(result.as_dict())


@bp.get("/telemetry/metrics")
@endpoint(
    summary="The metrics each asset type declares",
    tag="telemetry",
    query=MetricsQuery,
    response=MetricsOut,
    extra_responses={422: "Unknown asset type"},
)
def metrics(query: MetricsQuery) -> Response:
    declared = telemetry.metric_declarations(principal(), query.type)
    return jsonify(
        {
            "types": [
                {"type": name, "metrics": [m.as_dict() for m in found]} for name, found in declared
            ]
        }
    )

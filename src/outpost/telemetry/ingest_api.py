"""Ingestion over HTTP: JSON batches, and InfluxDB v1's ``/write`` with line protocol.

Both answer only after the points are durable. Devices authenticate with their
credential, integrations with an API token holding ``telemetry.write``; ``/write``
also takes them the ways InfluxDB clients send them (``Token`` header, basic-auth
password, ``p`` parameter), so Telegraf can point at ``/api/v1`` unchanged.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from outpost.errors import BadRequest, UnsupportedMediaType
from outpost.identity.models import Organization
from outpost.telemetry import ingest, retention
from outpost.telemetry.batches import samples_from_json
from outpost.telemetry.ingest_schemas import (
    JSON_BATCH_BODY,
    LINE_PROTOCOL_BODY,
    IngestOut,
    RetentionIn,
    RetentionOut,
    WriteQuery,
)
from outpost.telemetry.lineprotocol import parse_line_protocol
from outpost.web.context import (
    actor,
    principal,
    read_only_database,
    request_session,
    sender,
    services,
    transaction,
)
from outpost.web.openapi import endpoint
from outpost.web.problems import problem

bp = Blueprint("telemetry_ingest", __name__, url_prefix="/api/v1")

INGEST_ERRORS = {
    400: "Malformed batch or lines (each named)",
    403: "An asset the sender may not write for (named); nothing stored",
    413: "Too many values in one batch",
    415: "Wrong content type",
    422: "Invalid values (each named); nothing stored",
    503: "Storage busy or unreachable: retry after Retry-After seconds; nothing stored",
}


@bp.post("/telemetry")
@read_only_database
@endpoint(
    summary="Send telemetry as a JSON batch (a device credential or telemetry.write)",
    tag="telemetry",
    response=IngestOut,
    request_body=JSON_BATCH_BODY,
    extra_responses=INGEST_ERRORS,
)
def write_json() -> Response:
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the batch as application/json.")
    try:
        document = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from exc
    result = ingest.ingest(
        request_session(),
        services().telemetry,
        sender(),
        samples_from_json(document),
        max_points=services().settings.telemetry_max_batch_points,
    )
    return jsonify({"accepted": result.accepted})


@bp.post("/write")
@read_only_database
@endpoint(
    summary="Send telemetry in InfluxDB line protocol (InfluxDB v1 /write compatible)",
    tag="telemetry",
    query=WriteQuery,
    status=204,
    request_body=LINE_PROTOCOL_BODY,
    extra_responses=INGEST_ERRORS,
)
def write_line_protocol(query: WriteQuery) -> Response:
    samples, malformed = parse_line_protocol(request.get_data(cache=False), query.precision)
    result = ingest.ingest(
        request_session(),
        services().telemetry,
        sender(),
        samples,
        partial=True,
        max_points=services().settings.telemetry_max_batch_points,
    )
    rejected = sorted([*malformed, *result.rejected], key=lambda v: _line_number(v.path))
    if not rejected:
        return Response(status=204)
    listed = rejected[: ingest.LISTED_VIOLATIONS]
    reasons = "; ".join(f"{v.path}: {v.message}" for v in listed)
    error = f"partial write: {reasons} dropped={len(rejected)}"
    response = problem(
        400,
        "partial-write",
        "Partial write",
        f"{len(rejected):,} value(s) were refused, {result.accepted:,} stored.",
        listed,
        error=error,  # where InfluxDB clients (Telegraf) read the reason
        accepted=result.accepted,
    )
    response.headers["X-Influxdb-Error"] = error[:1000]
    return response


def _line_number(path: str) -> int:
    number = path.removeprefix("line ")
    return int(number) if number.isdigit() else 0


@bp.get("/telemetry/retention")
@endpoint(summary="How long telemetry is kept", tag="telemetry", response=RetentionOut)
def get_retention() -> Response:
    org = retention.get_retention(request_session(), principal())
    return jsonify(_retention_out(org))


@bp.put("/telemetry/retention")
@endpoint(
    summary="Set how long telemetry is kept (organization admins)",
    tag="telemetry",
    body=RetentionIn,
    response=RetentionOut,
    extra_responses={403: "Forbidden (member.manage)", 422: "Out of range"},
)
def set_retention(body: RetentionIn) -> Response:
    with transaction() as session:
        org = retention.set_retention(session, actor(), body.raw_days, body.rollup_days)
        return jsonify(_retention_out(org))


def _retention_out(org: Organization) -> dict[str, int]:
    return {"raw_days": org.telemetry_raw_days, "rollup_days": org.telemetry_rollup_days}

"""Audit REST API: ``/api/v1/audit`` and its export."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, stream_with_context

from outpost.audit import export, queries
from outpost.audit.schemas import AuditExportQuery, AuditFilter
from outpost.web.context import principal, services, transaction
from outpost.web.openapi import endpoint
from outpost.web.pages import Paged, paged

bp = Blueprint("audit_api", __name__, url_prefix="/api/v1")


@bp.get("/audit")
@endpoint(summary="List audit events, newest first", tag="audit", query=AuditFilter, response=Paged)
def list_audit(query: AuditFilter) -> Response:
    with transaction() as session:
        page = queries.list_events(session, principal(), query)
        return jsonify(paged([queries.event_dict(e) for e in page.items], page.next_cursor))


@bp.get("/audit/export")
@endpoint(
    summary="Export audit events as JSON Lines or CSV, oldest first",
    tag="audit",
    query=AuditExportQuery,
)
def export_audit(query: AuditExportQuery) -> Response:
    return export_response(query)


def export_response(query: AuditExportQuery) -> Response:
    """Stream the export; access is decided before the first byte is sent."""
    caller = principal()
    queries.authorize_export(caller)
    db = services().db

    def rows() -> Iterator[str]:
        with db.unit_of_work(write=False) as session:
            yield from export.render(queries.iter_events(session, caller, query), query.format)

    mimetype = "text/csv" if query.format == "csv" else "application/x-ndjson"
    response = Response(stream_with_context(rows()), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{query.format}"'
    return response

"""Audit pages: the filtered log, and its export for a logged-in user."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Blueprint, Response, render_template, request

from outpost.audit import queries
from outpost.audit.api import export_response
from outpost.audit.schemas import AuditExportQuery, AuditFilter
from outpost.errors import BadRequest
from outpost.web import forms
from outpost.web.context import principal, transaction

bp = Blueprint("audit", __name__, template_folder="templates")

FILTERS = ("action", "object_type", "object_id", "actor_id", "request_id", "since", "until")
PAGE_SIZE = 50


@dataclass(frozen=True)
class EventRow:
    event: dict[str, object]
    changes: list[forms.Change]


def _filter_values(args: Mapping[str, str], extra: tuple[str, ...] = ()) -> dict[str, str]:
    values = forms.query_values(args, (*FILTERS, *extra))
    for name in ("since", "until"):
        if name in values:
            values[name] = forms.utc_text(values[name])
    return values


@bp.get("/audit")
def events() -> str | tuple[str, int]:
    shown = forms.query_values(request.args, FILTERS)
    try:
        filters = forms.parse(
            AuditFilter, {**_filter_values(request.args, ("cursor",)), "limit": PAGE_SIZE}
        )
        with transaction() as session:
            page = queries.list_events(session, principal(), filters)
            rows = [
                EventRow(e, forms.changes(e["before"], e["after"]))
                for e in map(queries.event_dict, page.items)
            ]
    except BadRequest as exc:
        html = render_template(
            "audit/event_list.html", rows=[], next_cursor=None, shown=shown, error=exc
        )
        return html, 400
    return render_template(
        "audit/event_list.html",
        rows=rows,
        next_cursor=page.next_cursor,
        shown=shown,
        cursor=filters.cursor,
        error=None,
    )


@bp.get("/audit/export")
def export_events() -> Response:
    query = forms.parse(AuditExportQuery, _filter_values(request.args, ("format",)))
    return export_response(query)

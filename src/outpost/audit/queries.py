"""Reading the audit log: filtered, newest first, keyset-paginated by sequence number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from outpost.audit.models import AuditEvent
from outpost.audit.schemas import AuditFilter
from outpost.clock import isoformat
from outpost.errors import BadRequest
from outpost.identity.authz import authorize, can
from outpost.identity.principal import Principal
from outpost.identity.roles import Permission
from outpost.pagination import Page, decode_cursor, page_of


def _filtered(org_id: str, filters: AuditFilter) -> Select[AuditEvent]:
    if (filters.since and filters.since.tzinfo is None) or (
        filters.until and filters.until.tzinfo is None
    ):
        raise BadRequest("since and until need a time zone (use Z for UTC).")
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    for column, value in (
        (AuditEvent.object_type, filters.object_type),
        (AuditEvent.object_id, filters.object_id),
        (AuditEvent.actor_id, filters.actor_id),
        (AuditEvent.action, filters.action),
        (AuditEvent.request_id, filters.request_id),
    ):
        if value:
            query = query.where(column == value)
    if filters.since:
        query = query.where(AuditEvent.occurred_at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.occurred_at < filters.until)
    return query


def authorize_export(principal: Principal) -> None:
    authorize(principal, Permission.AUDIT_READ)


def list_events(session: Session, principal: Principal, filters: AuditFilter) -> Page[AuditEvent]:
    authorize(principal, Permission.AUDIT_READ)
    query = _filtered(principal.org_id, filters)
    after = decode_cursor(filters.cursor)
    if after is not None:
        if not after.isdigit():
            raise BadRequest("The cursor is not valid.")
        query = query.where(AuditEvent.seq < int(after))
    rows = list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(filters.limit + 1)))
    return page_of(rows, filters.limit, lambda event: str(event.seq))


def object_history(
    session: Session, principal: Principal, object_type: str, object_id: str, limit: int
) -> list[AuditEvent]:
    """An object's latest events, for its page: empty for those who may not read the
    audit log (it is organization-wide), rather than refusing the whole page."""
    if not can(principal, Permission.AUDIT_READ):
        return []
    filters = AuditFilter(object_type=object_type, object_id=object_id, limit=limit)
    return list(list_events(session, principal, filters).items)


def iter_events(
    session: Session, principal: Principal, filters: AuditFilter
) -> Iterator[AuditEvent]:
    """Every matching event, oldest first, streamed in batches (for export)."""
    authorize(principal, Permission.AUDIT_READ)
    query = _filtered(principal.org_id, filters).order_by(AuditEvent.seq).limit(filters.limit)
    yield from session.scalars(query.execution_options(yield_per=1000))


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "seq": event.seq,
        "occurred_at": isoformat(event.occurred_at),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": json.loads(event.before) if event.before else None,
        "after": json.loads(event.after) if event.after else None,
        "request_id": event.request_id,
        "source_ip": event.source_ip,
        "user_agent": event.user_agent,
        "reason": event.reason,
        "hash": event.hash,
    }

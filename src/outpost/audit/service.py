"""Appending to the audit log, inside the caller's transaction.

Nothing here commits: the event is written in the same transaction as the change it
describes, so either both are durable or neither is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from outpost.audit.actions import Action
from outpost.audit.chain import GENESIS_HASH, canonical_json, event_hash
from outpost.audit.models import AuditEvent, AuditHead
from outpost.clock import isoformat, utcnow
from outpost.db import bulk_insert
from outpost.identity.principal import Actor


class Auditable(Protocol):
    """An object that can describe itself for the audit log, without secrets."""

    audit_type: str

    @property
    def id(self) -> str: ...

    def audit_snapshot(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Change:
    """One event to append: what happened to which object, before and after."""

    action: Action
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def start_chain(session: Session, org_id: str) -> None:
    """Create an organization's empty chain; its first event will have ``seq`` 1."""
    session.add(AuditHead(org_id=org_id, seq=0, hash=GENESIS_HASH))
    session.flush()


def record(session: Session, actor: Actor, changes: Sequence[Change]) -> None:
    """Append ``changes`` to the actor's organization chain, in order, in this transaction."""
    if not changes:
        return
    org_id = actor.org_id
    head = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.org_id == org_id).with_for_update()
    ).one()
    seq, prev = head.seq, head.hash
    occurred_at = _now_ms()
    principal, meta = actor.principal, actor.meta
    rows: list[dict[str, Any]] = []
    for change in changes:
        seq += 1
        fields: dict[str, Any] = {
            "org_id": org_id,
            "seq": seq,
            "occurred_at": isoformat(occurred_at),
            "actor_type": principal.kind,
            "actor_id": principal.actor_id,
            "actor_label": principal.label,
            "action": str(change.action),
            "object_type": change.object_type,
            "object_id": change.object_id,
            "before": None if change.before is None else canonical_json(change.before),
            "after": None if change.after is None else canonical_json(change.after),
            "request_id": meta.request_id,
            "source_ip": meta.source_ip,
            "user_agent": meta.user_agent,
            "reason": meta.reason,
        }
        digest = event_hash(prev, fields)
        rows.append({**fields, "occurred_at": occurred_at, "prev_hash": prev, "hash": digest})
        prev = digest
    bulk_insert(session, cast(Table, AuditEvent.__table__), rows)
    session.execute(update(AuditHead).where(AuditHead.org_id == org_id).values(seq=seq, hash=prev))


@dataclass
class Tracker:
    """Handed to the body of :func:`tracked`: set ``obj`` on create, ``deleted`` on delete."""

    obj: Auditable | None
    deleted: bool = False


@contextmanager
def tracked(
    session: Session, actor: Actor, action: Action, obj: Auditable | None = None
) -> Iterator[Tracker]:
    """Snapshot ``obj``, let the caller change it, then record before and after.

    If the block raises, nothing is recorded (and the caller's transaction rolls back).
    """
    before = obj.audit_snapshot() if obj is not None else None
    tracker = Tracker(obj)
    yield tracker
    session.flush()
    target = tracker.obj
    if target is None:
        raise RuntimeError("tracked() block ended without an object to record")
    after = None if tracker.deleted else target.audit_snapshot()
    record(session, actor, [Change(action, target.audit_type, target.id, before, after)])


def _now_ms() -> datetime:
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

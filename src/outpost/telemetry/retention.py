"""Downsampling and retention, run by the worker (``outpost worker``).

Raw points are rolled up into 1-minute and 1-hour buckets once a minute is complete
(plus a settling delay for points that arrive a little late; later ones are picked up
again by the store's late-point bookkeeping). Each organization keeps raw points for
``telemetry_raw_days`` and rollups for ``telemetry_rollup_days``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.db import Database
from outpost.errors import NotFound, RuleViolation
from outpost.identity.authz import authorize, require_somewhere
from outpost.identity.models import Organization
from outpost.identity.principal import Actor, Principal
from outpost.identity.roles import Permission
from outpost.telemetry.store import TelemetryStore, to_ns
from outpost.validation import Violation

#: Minutes are rolled up this long after they end.
SETTLE: Final = timedelta(minutes=2)
#: The longest either period may be set to (ten years).
MAX_RETENTION_DAYS: Final = 3650


def get_retention(session: Session, principal: Principal) -> Organization:
    """The organization's retention periods (anyone who reads telemetry may see them)."""
    require_somewhere(principal, Permission.TELEMETRY_READ)
    org = session.get(Organization, principal.org_id)
    if org is None:
        raise NotFound("No such organization.")
    return org


def set_retention(session: Session, actor: Actor, raw_days: int, rollup_days: int) -> Organization:
    """How long the organization keeps raw points and rollups: an organization setting
    (``member.manage``), since shortening it deletes data at the next retention run."""
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    problems = []
    if not 1 <= raw_days <= MAX_RETENTION_DAYS:
        problems.append(
            Violation(
                "telemetry.retention_out_of_range",
                f"Keep raw points 1 to {MAX_RETENTION_DAYS} days.",
                "raw_days",
            )
        )
    if not raw_days <= rollup_days <= MAX_RETENTION_DAYS:
        problems.append(
            Violation(
                "telemetry.retention_out_of_range",
                f"Keep rollups at least as long as raw points, at most {MAX_RETENTION_DAYS} days.",
                "rollup_days",
            )
        )
    if problems:
        raise RuleViolation(problems, "The retention periods are out of range.")
    org = session.get(Organization, actor.org_id, with_for_update=True)
    if org is None:
        raise NotFound("No such organization.")
    if (org.telemetry_raw_days, org.telemetry_rollup_days) != (raw_days, rollup_days):
        with audit.tracked(session, actor, Action.ORG_UPDATED, org):
            org.telemetry_raw_days = raw_days
            org.telemetry_rollup_days = rollup_days
    return org


def downsample(store: TelemetryStore) -> int:
    """Roll up every complete minute up to now minus ``SETTLE``."""
    return store.downsample(to_ns(utcnow() - SETTLE))


def apply_retention(db: Database, store: TelemetryStore) -> int:
    """Drop each organization's raw points and rollups past its retention periods."""
    with db.unit_of_work(write=False) as session:
        organizations = session.execute(
            select(
                Organization.id,
                Organization.telemetry_raw_days,
                Organization.telemetry_rollup_days,
            )
        ).all()
    now = utcnow()
    dropped = 0
    for org_id, raw_days, rollup_days in organizations:
        dropped += store.apply_retention(
            org_id,
            to_ns(now - timedelta(days=raw_days)),
            to_ns(now - timedelta(days=rollup_days)),
        )
    return dropped

"""Temporary delegation: a grant gives a member a role on an area for a while.

The subset rule: a grantor gives only permissions they hold on that area, never for
longer than their own access there lasts, never beyond the organization's maximum
grant duration (default 7 days), and only with ``grant.create`` there. A temporary
grant never carries ``grant.create`` or ``token.create`` (see ``access.holdings``), so
its holder cannot delegate from it. A grant without an end is a standing assignment,
which only a member manager (``member.manage`` on the organization) can make.

Expiry is checked on every request (``access.live``); the sweeper below only records
``identity.grant.expired`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.db import Database
from outpost.errors import Conflict, Forbidden, NotFound, RuleViolation
from outpost.identity import factors
from outpost.identity.access import role_permissions
from outpost.identity.areas import area_scope
from outpost.identity.authz import can, holdings_of, reach
from outpost.identity.custom_roles import role_exists
from outpost.identity.models import Grant, Organization
from outpost.identity.principal import Actor, Area, Principal, Scope
from outpost.identity.roles import NOT_DELEGABLE, ORGANIZATION_ONLY, Permission
from outpost.identity.service import is_member, system_actor
from outpost.inventory import scopes as inventory_scopes
from outpost.inventory.models import Asset
from outpost.validation import Violation

#: How far ahead a grant may be set to start.
MAX_LEAD = timedelta(days=30)
#: How far in the past a start may lie (clock skew between client and server).
START_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class GrantSpec:
    """What a grant gives: ``role`` to ``user_id`` on an area (no site and no asset: the
    organization), from ``starts_at`` (None: now) until ``expires_at`` (None: standing)."""

    user_id: str
    role: str
    reason: str
    site_id: str | None = None
    asset_id: str | None = None
    starts_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def area(self) -> Area:
        return Area(None if self.asset_id else self.site_id, self.asset_id)


def max_duration(session: Session, org_id: str) -> timedelta:
    hours = session.scalar(select(Organization.max_grant_hours).where(Organization.id == org_id))
    return timedelta(hours=hours or 168)


def create_grant(
    session: Session,
    actor: Actor,
    spec: GrantSpec,
    *,
    web_session_id: str | None = None,
) -> Grant:
    """Give ``spec``'s role, following the subset rule; a sensitive action (fresh MFA)."""
    principal = actor.principal
    scope = area_scope(session, principal, spec.area)
    if spec.expires_at is None:
        if not can(principal, Permission.MEMBER_MANAGE):
            raise Forbidden("Only a member manager can give a role without an end.")
    elif not can(principal, Permission.GRANT_CREATE, scope):
        raise Forbidden(f"You do not hold {Permission.GRANT_CREATE} on this scope.")
    factors.require_fresh_mfa(session, principal, web_session_id)
    now = utcnow()
    starts_at = spec.starts_at or now
    problems = _problems(session, principal, spec, scope, now, grantee=True)
    if problems:
        raise RuleViolation(problems, "The grant cannot be given.")
    with audit.tracked(session, actor, Action.GRANT_CREATED) as track:
        grant = Grant(
            id=ids.new_id("grt"),
            org_id=actor.org_id,
            user_id=spec.user_id,
            role=spec.role,
            site_id=spec.area.site_id,
            asset_id=spec.area.asset_id,
            starts_at=starts_at,
            expires_at=spec.expires_at,
            reason=spec.reason.strip(),
            granted_by=principal.user_id,
            created_at=now,
        )
        session.add(grant)
        track.obj = grant
    return grant


def grantor_problems(
    session: Session, principal: Principal, spec: GrantSpec, scope: Scope, now: datetime
) -> list[Violation]:
    """Why ``principal`` could not give ``spec`` (at ``scope``, where its area sits) at
    ``now``, whoever receives it: the reason, the role, the area, the times and the subset
    rule, but not ``spec.user_id``. An invitation checks this before its grantee exists
    (when it is made, and again with the inviter's holdings of the day it is accepted).

    ``grant.create`` on the scope, and a fresh second factor, are the caller's to check.
    """
    return _problems(session, principal, spec, scope, now, grantee=False)


def _problems(
    session: Session,
    principal: Principal,
    spec: GrantSpec,
    scope: Scope,
    now: datetime,
    *,
    grantee: bool,
) -> list[Violation]:
    starts_at = spec.starts_at or now
    problems = _spec_problems(session, principal, spec, starts_at, now, grantee=grantee)
    if not problems:
        problems = _subset_problems(session, principal, spec, scope, starts_at)
    return problems


def _spec_problems(
    session: Session,
    principal: Principal,
    spec: GrantSpec,
    starts_at: datetime,
    now: datetime,
    *,
    grantee: bool,
) -> list[Violation]:
    problems = []
    if not spec.reason.strip() or len(spec.reason) > 500:
        problems.append(Violation("grant.reason_required", "Give a reason (1-500).", "reason"))
    if not role_exists(session, principal.org_id, spec.role):
        problems.append(Violation("grant.role_unknown", f"Unknown role {spec.role!r}.", "role"))
    if grantee:
        problems += _grantee_problems(session, principal, spec)
    if spec.site_id and spec.asset_id:
        problems.append(Violation("grant.scope_twice", "Name a site or an asset, not both.", ""))
    for name, value in (("starts_at", spec.starts_at), ("expires_at", spec.expires_at)):
        if value is not None and value.tzinfo is None:
            problems.append(Violation("grant.time_naive", "Give times in UTC (Z).", name))
    if problems:
        return problems
    if not now - START_SLACK <= starts_at <= now + MAX_LEAD:
        problems.append(
            Violation(
                "grant.start_out_of_range",
                f"A grant starts between now and {MAX_LEAD.days} days from now.",
                "starts_at",
            )
        )
    if spec.expires_at is not None:
        longest = max_duration(session, principal.org_id)
        if spec.expires_at <= max(starts_at, now):
            problems.append(
                Violation("grant.ends_before_start", "A grant must end after it starts.", "")
            )
        elif spec.expires_at - starts_at > longest:
            problems.append(
                Violation(
                    "grant.too_long",
                    f"A grant lasts at most {_hours(longest)} in this organization.",
                    "expires_at",
                )
            )
    return problems


def _grantee_problems(session: Session, principal: Principal, spec: GrantSpec) -> list[Violation]:
    if spec.user_id == principal.user_id:
        return [Violation("grant.self", "You cannot grant access to yourself.", "user_id")]
    if not is_member(session, principal.org_id, spec.user_id):
        return [Violation("grant.user_unknown", "No such member here.", "user_id")]
    return []


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"


def _subset_problems(
    session: Session, principal: Principal, spec: GrantSpec, scope: Scope, starts_at: datetime
) -> list[Violation]:
    """The grantor holds every permission the grant would give, there, for as long."""
    given = role_permissions(session, principal.org_id, [spec.role])[spec.role]
    if not spec.area.whole:
        given = given - ORGANIZATION_ONLY
    if spec.expires_at is not None:
        given = given - NOT_DELEGABLE
    problems = [
        Violation(
            "grant.permission_not_held",
            f"You do not hold {permission} on this scope, so you cannot give it.",
            "role",
        )
        for permission in sorted(given)
        if not can(principal, Permission(permission), scope)
    ]
    if problems or spec.expires_at is None:
        return problems
    until = _access_until(principal, given, scope)
    if until is not None and spec.expires_at > until:
        problems.append(
            Violation(
                "grant.outlives_grantor",
                f"Your own access here ends at {until.isoformat()}; the grant cannot last longer.",
                "expires_at",
            )
        )
    return problems


def _access_until(principal: Principal, given: frozenset[str], scope: Scope) -> datetime | None:
    """When the principal stops holding all of ``given`` at ``scope`` (None: never)."""
    ends: list[datetime] = []
    for permission in given:
        covering = [
            holding.until
            for holding in holdings_of(principal)
            if permission in holding.permissions and holding.area.covers(scope)
        ]
        if covering and None not in covering:
            ends.append(max(until for until in covering if until is not None))
    return min(ends) if ends else None


# --- reading ----------------------------------------------------------------------------


def delegable_here(
    principal: Principal,
    site_id: InstrumentedAttribute[str | None],
    asset_id: InstrumentedAttribute[str | None],
) -> ColumnElement[bool]:
    """Rows naming an area (``site_id``, ``asset_id`` columns) the principal could give
    access to: everywhere for a member manager, else inside where they hold
    ``grant.create``. Grants and access requests are seen by who could give them."""
    if can(principal, Permission.MEMBER_MANAGE):
        return true()
    found = reach(principal, Permission.GRANT_CREATE)
    if found.nowhere:
        return false()

    def inside(area: Area) -> ColumnElement[bool]:
        if area.whole:
            return true()
        below = asset_id.in_(select(Asset.id).where(inventory_scopes.assets_within_area(area)))
        return below if area.asset_id is not None else or_(site_id == area.site_id, below)

    return and_(or_(*(inside(area) for area in found.areas)), inside(found.within))


def visible(principal: Principal) -> ColumnElement[bool]:
    """The grants a principal may see: their own, and those they could have given."""
    mine = Grant.user_id == principal.user_id
    return and_(
        Grant.org_id == principal.org_id,
        or_(mine, delegable_here(principal, Grant.site_id, Grant.asset_id)),
    )


@dataclass(frozen=True)
class GrantFilter:
    user_id: str | None = None
    site_id: str | None = None
    asset_id: str | None = None
    #: "active" (in force now), "upcoming", "ended" (expired or revoked), or None: all.
    state: str | None = None
    #: Only grants on the whole organization (no site, no asset).
    organization_wide: bool = False
    limit: int = 50
    cursor: str | None = None


def state_condition(state: str | None, now: datetime) -> ColumnElement[bool]:
    not_revoked = Grant.revoked_at.is_(None)
    unexpired = or_(Grant.expires_at.is_(None), Grant.expires_at > now)
    if state == "active":
        return and_(not_revoked, Grant.starts_at <= now, unexpired)
    if state == "upcoming":
        return and_(not_revoked, Grant.starts_at > now, unexpired)
    if state == "ended":
        return or_(Grant.revoked_at.is_not(None), Grant.expires_at <= now)
    return true()


def list_grants(session: Session, principal: Principal, filters: GrantFilter) -> list[Grant]:
    """Visible grants, newest first (keyset on id, which grows with time)."""
    query = select(Grant).where(visible(principal), state_condition(filters.state, utcnow()))
    if filters.user_id:
        query = query.where(Grant.user_id == filters.user_id)
    if filters.site_id:
        query = query.where(
            or_(
                Grant.site_id == filters.site_id,
                Grant.asset_id.in_(select(Asset.id).where(Asset.site_id == filters.site_id)),
            )
        )
    if filters.asset_id:
        query = query.where(Grant.asset_id == filters.asset_id)
    if filters.organization_wide:
        query = query.where(Grant.site_id.is_(None), Grant.asset_id.is_(None))
    if filters.cursor:
        query = query.where(Grant.id < filters.cursor)
    return list(session.scalars(query.order_by(Grant.id.desc()).limit(filters.limit + 1)))


def may_grant_on_site(principal: Principal, site_id: str, asset_ids: set[str]) -> bool:
    """Whether the principal could give access somewhere on a site (``asset_ids``: its
    assets they can see): ``grant.create`` on the site or a subtree in it, or a member
    manager. For showing forms; ``create_grant`` decides each grant."""
    if can(principal, Permission.MEMBER_MANAGE):
        return True
    if can(principal, Permission.GRANT_CREATE, Scope(site_id)):
        return True
    areas = reach(principal, Permission.GRANT_CREATE).areas
    return any(area.asset_id in asset_ids for area in areas)


def get_grant(session: Session, principal: Principal, grant_id: str) -> Grant:
    grant = session.scalar(select(Grant).where(Grant.id == grant_id, visible(principal)))
    if grant is None:
        raise NotFound(f"No grant {grant_id}.")
    return grant


def is_live(grant: Grant, now: datetime) -> bool:
    return (
        grant.revoked_at is None
        and grant.starts_at <= now
        and (grant.expires_at is None or grant.expires_at > now)
    )


# --- ending -----------------------------------------------------------------------------


def revoke_grant(session: Session, actor: Actor, grant_id: str, reason: str) -> Grant:
    """End someone's grant now, with a reason: by whoever could have given it (holds
    ``grant.create`` there) or a member manager. Takes effect on the next request."""
    principal = actor.principal
    grant = _lockable(session, principal, grant_id)
    scope = area_scope(session, principal, Area(grant.site_id, grant.asset_id))
    if not (
        can(principal, Permission.MEMBER_MANAGE) or can(principal, Permission.GRANT_CREATE, scope)
    ):
        raise Forbidden(f"You do not hold {Permission.GRANT_CREATE} on this grant's scope.")
    return _end(session, actor, grant, reason, Action.GRANT_REVOKED)


def end_grant(session: Session, actor: Actor, grant_id: str, reason: str = "") -> Grant:
    """The holder's "I'm done": their own grant ends now."""
    grant = _lockable(session, actor.principal, grant_id)
    if grant.user_id != actor.principal.user_id:
        raise Forbidden("Only the grant's holder can end it early; revoke it instead.")
    return _end(session, actor, grant, reason or "Ended early by its holder.", Action.GRANT_ENDED)


def _lockable(session: Session, principal: Principal, grant_id: str) -> Grant:
    grant = session.scalar(
        select(Grant).where(Grant.id == grant_id, visible(principal)).with_for_update()
    )
    if grant is None:
        raise NotFound(f"No grant {grant_id}.")
    return grant


def _end(session: Session, actor: Actor, grant: Grant, reason: str, action: Action) -> Grant:
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise RuleViolation(
            [Violation("grant.reason_required", "Give a reason.", "reason")], "Give a reason."
        )
    now = utcnow()
    if grant.revoked_at is not None or (grant.expires_at is not None and grant.expires_at <= now):
        raise Conflict("The grant has already ended.")
    with audit.tracked(session, actor, action, grant):
        grant.revoked_at = now
        grant.revoked_by = actor.principal.user_id
        grant.revoke_reason = reason
    return grant


# --- the sweeper ------------------------------------------------------------------------


def record_expiries(db: Database, *, batch: int = 500) -> int:
    """Record ``identity.grant.expired`` for grants that ran out (one event each, once).

    Access already ended at ``expires_at``; this only writes it down. Rows are claimed
    with SKIP LOCKED, so several workers can run it.
    """
    done = 0
    while True:
        with db.unit_of_work(write=True) as session:
            now = utcnow()
            due = list(
                session.scalars(
                    select(Grant)
                    .where(
                        Grant.expires_at <= now,
                        Grant.revoked_at.is_(None),
                        Grant.expiry_recorded_at.is_(None),
                    )
                    .order_by(Grant.org_id, Grant.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            for grant in due:
                before = grant.audit_snapshot()
                grant.expiry_recorded_at = now
                audit.record(
                    session,
                    system_actor(grant.org_id, "grant sweeper"),
                    [audit.Change(Action.GRANT_EXPIRED, "grant", grant.id, before, before)],
                )
            done += len(due)
        if len(due) < batch:
            return done

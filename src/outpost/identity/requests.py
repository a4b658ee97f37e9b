"""Access requests: a member asks for a role on an area for a while, with a reason; an
approver answers.

Anyone who is a member may ask, even with no standing access (role ``none``): asking
is how such a member gets to work. An approver is whoever could give that grant
themselves (``grant.create`` on the requested area), so approval goes through
``grants.create_grant`` with the approver as grantor: the subset rule and the fresh-MFA
check apply exactly as if they had given the grant unprompted. Nobody approves their own
request, which would be self-granting with extra steps.

A request nobody answers lapses ``REQUEST_TTL`` after it was made. The lapse is read
from the clock (a pending request past ``expires_at`` reads as expired and cannot be
decided); the sweeper ``expire_requests`` only writes the status down and records the
``identity.access_request.expired`` event, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.db import Database
from outpost.errors import Conflict, Forbidden, NotFound, RuleViolation
from outpost.identity import areas, grants
from outpost.identity.authz import can
from outpost.identity.custom_roles import role_exists
from outpost.identity.models import AccessRequest, Grant
from outpost.identity.principal import ORGANIZATION, Actor, Area, Principal, Scope
from outpost.identity.roles import NO_ROLE, Permission
from outpost.identity.service import system_actor
from outpost.pagination import Page, decode_cursor, page_of
from outpost.validation import Violation

#: How long a request waits for an answer before it lapses.
REQUEST_TTL = timedelta(hours=72)
#: How many undecided requests one member may have open in an organization at once.
MAX_PENDING = 20
#: The longest reason (a request's or a decision's), as the columns allow.
REASON_MAX = 500

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
CANCELLED = "cancelled"
EXPIRED = "expired"
STATUSES = (PENDING, APPROVED, DENIED, CANCELLED, EXPIRED)


def status_at(request: AccessRequest, now: datetime) -> str:
    """The status as it reads at ``now``: a pending request past its deadline has lapsed
    even if the sweeper has not written that down yet."""
    if request.status == PENDING and request.expires_at <= now:
        return EXPIRED
    return request.status


def request_area(request: AccessRequest) -> Area:
    return Area(request.site_id, request.asset_id)


# --- asking -----------------------------------------------------------------------------


def request_access(
    session: Session,
    actor: Actor,
    *,
    role: str,
    site_id: str | None = None,
    asset_id: str | None = None,
    duration_minutes: int,
    reason: str,
) -> AccessRequest:
    """Ask for ``role`` on a site, an asset subtree or (neither) the whole organization,
    for ``duration_minutes`` from approval. Open to every member: no permission needed."""
    principal = actor.principal
    problems = list(
        _request_problems(session, principal.org_id, role, site_id, asset_id, duration_minutes)
    )
    problems += _reason_problems(reason)
    if problems:
        raise RuleViolation(problems, "The access request is not valid.")
    areas.existing_area_scope(session, principal, Area(site_id, asset_id))  # NotFound if missing
    _check_pending_room(session, principal)
    now = utcnow()
    with audit.tracked(session, actor, Action.ACCESS_REQUESTED) as track:
        request = AccessRequest(
            id=ids.new_id("acr"),
            org_id=principal.org_id,
            user_id=principal.user_id,
            role=role,
            site_id=site_id,
            asset_id=asset_id,
            duration_minutes=duration_minutes,
            reason=reason.strip(),
            status=PENDING,
            created_at=now,
            expires_at=now + REQUEST_TTL,
        )
        session.add(request)
        track.obj = request
    return request


def _request_problems(
    session: Session,
    org_id: str,
    role: str,
    site_id: str | None,
    asset_id: str | None,
    duration_minutes: int,
) -> Iterator[Violation]:
    if role == NO_ROLE:
        yield Violation("access_request.role_empty", "Ask for a role that gives access.", "role")
    elif not role_exists(session, org_id, role):
        yield Violation("access_request.role_unknown", f"Unknown role {role!r}.", "role")
    if site_id and asset_id:
        yield Violation("access_request.scope_twice", "Name a site or an asset, not both.", "")
    longest = grants.max_duration(session, org_id)
    if not 1 <= duration_minutes <= longest.total_seconds() // 60:
        yield Violation(
            "access_request.duration_out_of_range",
            f"Ask for between 1 minute and {int(longest.total_seconds() // 60)} minutes "
            "(this organization's longest grant).",
            "duration_minutes",
        )


def _reason_problems(reason: str) -> list[Violation]:
    if reason.strip() and len(reason.strip()) <= REASON_MAX:
        return []
    return [
        Violation("access_request.reason_required", f"Give a reason (1-{REASON_MAX}).", "reason")
    ]


def _check_pending_room(session: Session, principal: Principal) -> None:
    """A cap on open requests, so one member cannot flood the approvers' queue."""
    open_count = session.scalar(
        select(func.count())
        .select_from(AccessRequest)
        .where(
            AccessRequest.org_id == principal.org_id,
            AccessRequest.user_id == principal.user_id,
            _status_is(PENDING, utcnow()),
        )
    )
    if (open_count or 0) >= MAX_PENDING:
        raise Conflict(
            f"You already have {MAX_PENDING} requests waiting for an answer; "
            "cancel one or wait for a decision.",
            [Violation("access_request.too_many_pending", "Too many open requests.", "")],
        )


# --- reading ----------------------------------------------------------------------------


def visible(principal: Principal) -> ColumnElement[bool]:
    """The requests a principal may see: their own, and those they could approve."""
    mine = AccessRequest.user_id == principal.user_id
    could_approve = grants.delegable_here(principal, AccessRequest.site_id, AccessRequest.asset_id)
    return and_(AccessRequest.org_id == principal.org_id, or_(mine, could_approve))


def _status_is(status: str, now: datetime) -> ColumnElement[bool]:
    """The stored status, read with lapsed pending requests counted as expired."""
    if status == PENDING:
        return and_(AccessRequest.status == PENDING, AccessRequest.expires_at > now)
    if status == EXPIRED:
        return or_(
            AccessRequest.status == EXPIRED,
            and_(AccessRequest.status == PENDING, AccessRequest.expires_at <= now),
        )
    return AccessRequest.status == status


def list_requests(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    mine: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AccessRequest]:
    """Visible requests (``mine``: only the caller's own), newest first."""
    query = select(AccessRequest).where(visible(principal))
    if mine:
        query = query.where(AccessRequest.user_id == principal.user_id)
    if status is not None:
        query = query.where(_status_is(status, utcnow()))
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(AccessRequest.id < after)
    rows = session.scalars(query.order_by(AccessRequest.id.desc()).limit(limit + 1)).all()
    return page_of(rows, limit, lambda request: request.id)


def get_request(session: Session, principal: Principal, request_id: str) -> AccessRequest:
    found = session.scalar(
        select(AccessRequest).where(AccessRequest.id == request_id, visible(principal))
    )
    if found is None:
        raise NotFound(f"No access request {request_id}.")
    return found


def _lockable(session: Session, principal: Principal, request_id: str) -> AccessRequest:
    found = session.scalar(
        select(AccessRequest)
        .where(AccessRequest.id == request_id, visible(principal))
        .with_for_update()
    )
    if found is None:
        raise NotFound(f"No access request {request_id}.")
    return found


# --- deciding ---------------------------------------------------------------------------


def approve(
    session: Session,
    actor: Actor,
    request_id: str,
    *,
    reason: str,
    web_session_id: str | None = None,
) -> AccessRequest:
    """Say yes: give the requested role on the requested area from now for the requested
    duration, as a grant from the approver (subset rule and fresh MFA apply)."""
    request = _decidable(session, actor, request_id, reason)
    now = utcnow()
    grant = grants.create_grant(
        session,
        actor,
        grants.GrantSpec(
            user_id=request.user_id,
            role=request.role,
            reason=_grant_reason(request),
            site_id=request.site_id,
            asset_id=request.asset_id,
            starts_at=now,
            expires_at=now + timedelta(minutes=request.duration_minutes),
        ),
        web_session_id=web_session_id,
    )
    return _decide(session, actor, request, APPROVED, reason, grant)


def deny(session: Session, actor: Actor, request_id: str, *, reason: str) -> AccessRequest:
    """Say no, with a reason the requester will read."""
    request = _decidable(session, actor, request_id, reason)
    return _decide(session, actor, request, DENIED, reason)


def cancel(session: Session, actor: Actor, request_id: str) -> AccessRequest:
    """The requester withdraws a request that is still waiting."""
    principal = actor.principal
    request = _lockable(session, principal, request_id)
    if request.user_id != principal.user_id:
        raise Forbidden("Only the member who asked can cancel a request; deny it instead.")
    _require_pending(request)
    with audit.tracked(session, actor, Action.ACCESS_REQUEST_CANCELLED, request):
        request.status = CANCELLED
        request.decided_by = principal.user_id
        request.decided_at = utcnow()
    return request


def _decidable(session: Session, actor: Actor, request_id: str, reason: str) -> AccessRequest:
    """The request, locked, once the actor is shown to be an approver of it and it is
    still waiting; a reason is required for either answer."""
    principal = actor.principal
    request = _lockable(session, principal, request_id)
    if request.user_id == principal.user_id:
        raise Forbidden("You cannot decide your own access request; another approver must.")
    if not can(principal, Permission.GRANT_CREATE, _decision_scope(session, principal, request)):
        raise Forbidden(f"You do not hold {Permission.GRANT_CREATE} on this request's scope.")
    _require_pending(request)
    problems = _reason_problems(reason)
    if problems:
        raise RuleViolation(problems, "Give a reason for your decision.")
    return request


def _decision_scope(session: Session, principal: Principal, request: AccessRequest) -> Scope:
    """Where the request's area sits. A site or asset deleted since the request sits
    nowhere any more: then only an approver for the whole organization may answer (deny
    it; an approval would fail on the missing scope)."""
    try:
        return areas.existing_area_scope(session, principal, request_area(request))
    except NotFound:
        return ORGANIZATION


def _require_pending(request: AccessRequest) -> None:
    status = status_at(request, utcnow())
    if status != PENDING:
        raise Conflict(
            f"The request is {status}; only a pending request can be answered or cancelled.",
            [Violation("access_request.not_pending", f"The request is {status}.", "status")],
        )


def _grant_reason(request: AccessRequest) -> str:
    """The grant's reason names the request it answers (the grant table has no link back)."""
    return f"Access request {request.id}: {request.reason}"[:REASON_MAX]


def _decide(
    session: Session,
    actor: Actor,
    request: AccessRequest,
    status: str,
    reason: str,
    grant: Grant | None = None,
) -> AccessRequest:
    action = Action.ACCESS_REQUEST_APPROVED if status == APPROVED else Action.ACCESS_REQUEST_DENIED
    with audit.tracked(session, actor, action, request):
        request.status = status
        request.decided_by = actor.principal.user_id
        request.decided_at = utcnow()
        request.decision_reason = reason.strip()
        request.grant_id = grant.id if grant is not None else None
    return request


# --- the sweeper ------------------------------------------------------------------------


def expire_requests(db: Database, *, batch: int = 500) -> int:
    """Write down that unanswered requests lapsed, with one ``expired`` event each.

    They already read as expired from ``expires_at`` on; this makes the stored status
    agree and leaves the trail. Rows are claimed with SKIP LOCKED, so several workers
    can run it, and an approver holding a row is never waited for.
    """
    done = 0
    while True:
        with db.unit_of_work(write=True) as session:
            due = list(
                session.scalars(
                    select(AccessRequest)
                    .where(AccessRequest.status == PENDING, AccessRequest.expires_at <= utcnow())
                    .order_by(AccessRequest.org_id, AccessRequest.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            for request in due:
                sweeper = system_actor(request.org_id, "access request sweeper")
                with audit.tracked(session, sweeper, Action.ACCESS_REQUEST_EXPIRED, request):
                    request.status = EXPIRED
            done += len(due)
        if len(due) < batch:
            return done

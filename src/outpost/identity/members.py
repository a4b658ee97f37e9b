"""Changing who belongs to an organization and with which standing role.

Both are sensitive (``member.manage`` and a fresh MFA check). A role change counts
from the member's next request, since holdings are read afresh. Removing a member ends
their web sessions and revokes their tokens and live grants in this organization in the
same transaction; the organization always keeps one admin.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import Conflict, NotFound, RuleViolation
from outpost.identity import factors
from outpost.identity.authz import authorize
from outpost.identity.custom_roles import role_exists
from outpost.identity.models import ApiToken, Grant, Membership, Organization, WebSession
from outpost.identity.principal import Actor
from outpost.identity.roles import Permission
from outpost.validation import Violation

ADMIN = "admin"
MAX_GRANT_HOURS = 24 * 366


def _membership(session: Session, org_id: str, user_id: str) -> Membership:
    found = session.scalar(
        select(Membership)
        .where(Membership.org_id == org_id, Membership.user_id == user_id)
        .with_for_update()
    )
    if found is None:
        raise NotFound(f"No member {user_id}.")
    return found


def _keep_an_admin(session: Session, membership: Membership) -> None:
    if membership.role != ADMIN:
        return
    admins = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.org_id == membership.org_id, Membership.role == ADMIN)
    )
    if (admins or 0) <= 1:
        raise Conflict("This is the organization's last admin; make someone else admin first.")


def set_member_role(
    session: Session, actor: Actor, user_id: str, role: str, *, web_session_id: str | None = None
) -> Membership:
    membership = _membership(session, actor.org_id, user_id)
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    if not role_exists(session, actor.org_id, role):
        raise RuleViolation(
            [Violation("member.role_unknown", f"Unknown role {role!r}.", "role")], "Unknown role."
        )
    if membership.role == role:
        return membership
    if role != ADMIN:
        _keep_an_admin(session, membership)
    with audit.tracked(session, actor, Action.MEMBERSHIP_UPDATED, membership):
        membership.role = role
    return membership


def remove_member(
    session: Session, actor: Actor, user_id: str, *, web_session_id: str | None = None
) -> None:
    membership = _membership(session, actor.org_id, user_id)
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    _keep_an_admin(session, membership)
    now = utcnow()
    org_id = actor.org_id
    session.execute(
        update(WebSession)
        .where(
            WebSession.org_id == org_id,
            WebSession.user_id == user_id,
            WebSession.ended_at.is_(None),
        )
        .values(ended_at=now)
    )
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.org_id == org_id, ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    )
    session.execute(
        update(Grant)
        .where(
            Grant.org_id == org_id,
            Grant.user_id == user_id,
            Grant.revoked_at.is_(None),
            or_(Grant.expires_at.is_(None), Grant.expires_at > now),
        )
        .values(revoked_at=now, revoked_by=actor.principal.user_id, revoke_reason="member removed")
    )
    with audit.tracked(session, actor, Action.MEMBERSHIP_DELETED, membership) as track:
        session.delete(membership)
        track.deleted = True


def set_max_grant_hours(
    session: Session, actor: Actor, hours: int, *, web_session_id: str | None = None
) -> Organization:
    """The longest a grant may last in the organization (default 168 h, at most a year)."""
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    if not 1 <= hours <= MAX_GRANT_HOURS:
        raise RuleViolation(
            [
                Violation(
                    "organization.max_grant_out_of_range",
                    f"Give 1 to {MAX_GRANT_HOURS} hours.",
                    "max_grant_hours",
                )
            ],
            "Out of range.",
        )
    org = session.get(Organization, actor.org_id, with_for_update=True)
    if org is None:
        raise NotFound("No such organization.")
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    if org.max_grant_hours != hours:
        with audit.tracked(session, actor, Action.ORG_UPDATED, org):
            org.max_grant_hours = hours
    return org

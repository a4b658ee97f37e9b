"""Invitations: an expiring, single-use link that brings an external user in with one
grant and nothing else.

An inviter who could give the grant (``grant.create`` on its scope and the subset rule,
see ``grants``) names an email, a role, a scope and how long the grant lasts. The link
carries 256 random bits, is shown once and lives ``LINK_LIFETIME``; only its SHA-256 is
stored. Whoever opens it sets a password (or, for an email that already has an account,
gives theirs), becomes a member with no standing access (``NO_ROLE``) unless they already
were one, and receives the grant from the moment they accept. The grant is checked again
at acceptance against the inviter's holdings of that day: an inviter who lost the access
cannot hand it out through an old link. Every step is audited; the secret never is.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, select, true, update
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import Conflict, Forbidden, NotFound, RuleViolation, Unauthenticated
from outpost.identity import factors, grants, passwords, sessions, throttle
from outpost.identity import secrets as identity_secrets
from outpost.identity.areas import area_scope
from outpost.identity.authz import can, require_somewhere
from outpost.identity.custom_roles import list_roles
from outpost.identity.models import Grant, Invitation, Membership, Organization, User
from outpost.identity.principal import Actor, Principal, RequestMeta
from outpost.identity.roles import NO_ROLE, ROLE_DESCRIPTIONS, Permission
from outpost.identity.service import password_violations, principal_for, system_actor
from outpost.inventory import queries as inventory_queries
from outpost.inventory import service as inventory
from outpost.inventory.schemas import SiteFilter
from outpost.validation import Violation

#: How long a link can be used.
LINK_LIFETIME = timedelta(hours=72)
#: A visible prefix, so a leaked link is recognisable (secret scanners, logs).
SECRET_PREFIX = "opi"
MAX_EMAIL = 320
MAX_DISPLAY_NAME = 200
#: Whatever reason it has (unknown, expired, used, revoked, its scope deleted): one 404,
#: so the holder of a link learns nothing but "not usable".
GONE = "This invitation does not exist, has expired, was already used or was revoked."


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    secret: str  # shown once, never stored


def _spec(
    *,
    user_id: str,
    role: str,
    reason: str,
    site_id: str | None,
    asset_id: str | None,
    minutes: int,
    now: datetime,
) -> grants.GrantSpec:
    """The grant an invitation gives, if it were accepted at ``now``."""
    return grants.GrantSpec(
        user_id=user_id,
        role=role,
        reason=reason,
        site_id=site_id,
        asset_id=asset_id,
        starts_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )


def _normal_email(email: str) -> str:
    return email.strip().lower()


# --- inviting ---------------------------------------------------------------------------


def invite(
    session: Session,
    actor: Actor,
    *,
    email: str,
    role: str,
    site_id: str | None = None,
    asset_id: str | None = None,
    duration_minutes: int,
    reason: str,
    web_session_id: str | None = None,
) -> IssuedInvitation:
    """Make a link that gives ``role`` on the area for ``duration_minutes`` from its
    acceptance; a sensitive action (fresh MFA), bound by the same rules as a grant."""
    principal = actor.principal
    email = _normal_email(email)
    now = utcnow()
    longest = grants.max_duration(session, principal.org_id)
    # the subset rule is checked with a duration that it can judge (in range); a duration
    # out of range gets its own violation below, so every problem is listed at once
    minutes = min(max(duration_minutes, 1), int(longest.total_seconds() // 60))
    spec = _spec(
        user_id="",
        role=role,
        reason=reason,
        site_id=site_id,
        asset_id=asset_id,
        minutes=minutes,
        now=now,
    )
    scope = area_scope(session, principal, spec.area)
    if not can(principal, Permission.GRANT_CREATE, scope):
        raise Forbidden(f"You do not hold {Permission.GRANT_CREATE} on this scope.")
    factors.require_fresh_mfa(session, principal, web_session_id)
    problems = _invitation_problems(session, principal, email, role, duration_minutes, longest)
    problems += grants.grantor_problems(session, principal, spec, scope, now)
    if problems:
        raise RuleViolation(problems, "The invitation cannot be made.")
    secret = f"{SECRET_PREFIX}_{secrets.token_urlsafe(32)}"
    with audit.tracked(session, actor, Action.INVITATION_CREATED) as track:
        invitation = Invitation(
            id=ids.new_id("inv"),
            org_id=actor.org_id,
            email=email,
            secret_hash=identity_secrets.digest(secret),
            role=role,
            site_id=spec.area.site_id,
            asset_id=spec.area.asset_id,
            duration_minutes=duration_minutes,
            reason=reason.strip(),
            invited_by=principal.user_id,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
        session.add(invitation)
        track.obj = invitation
    return IssuedInvitation(invitation, secret)


def _invitation_problems(
    session: Session,
    principal: Principal,
    email: str,
    role: str,
    duration_minutes: int,
    longest: timedelta,
) -> list[Violation]:
    """What only an invitation can get wrong: the email, an empty role, the duration."""
    problems = []
    if "@" not in email or len(email) > MAX_EMAIL:
        problems.append(
            Violation("invitation.email_invalid", "Give a valid email address.", "email")
        )
    elif email == session.scalar(select(User.email).where(User.id == principal.user_id)):
        problems.append(Violation("invitation.self", "You cannot invite yourself.", "email"))
    if role == NO_ROLE:
        problems.append(
            Violation("invitation.role_empty", "Choose a role that gives some access.", "role")
        )
    if not timedelta(minutes=1) <= timedelta(minutes=duration_minutes) <= longest:
        hours = int(longest.total_seconds() // 3600)
        problems.append(
            Violation(
                "invitation.duration_out_of_range",
                f"The access lasts from 1 minute to {hours} hours in this organization.",
                "duration_minutes",
            )
        )
    return problems


# --- the public page --------------------------------------------------------------------


@dataclass(frozen=True)
class InvitationView:
    """What the link's page shows before anyone accepts."""

    invitation: Invitation
    org_name: str
    inviter: str
    role_description: str
    scope_label: str
    #: The email already has an account: its password is asked, not a new one.
    existing_account: bool


def _usable(session: Session, secret: str, now: datetime) -> Invitation:
    found = session.scalar(
        select(Invitation).where(Invitation.secret_hash == identity_secrets.digest(secret))
    )
    if (
        found is None
        or found.used_at is not None
        or found.revoked_at is not None
        or found.expires_at <= now
    ):
        raise NotFound(GONE)
    return found


def describe(session: Session, secret: str) -> InvitationView:
    """The offer behind a link, or NotFound (unknown, expired, used, revoked: the same)."""
    invitation = _usable(session, secret, utcnow())
    org_name = session.scalar(select(Organization.name).where(Organization.id == invitation.org_id))
    inviter = session.get(User, invitation.invited_by)
    existing = session.scalar(select(User.id).where(User.email == invitation.email))
    return InvitationView(
        invitation=invitation,
        org_name=org_name or "",
        inviter=f"{inviter.display_name} <{inviter.email}>" if inviter else "a former member",
        role_description=ROLE_DESCRIPTIONS.get(invitation.role, ""),
        scope_label=_scope_label(session, invitation),
        existing_account=existing is not None,
    )


def _scope_label(session: Session, invitation: Invitation) -> str:
    """The area in words; a site or asset deleted since makes the link unusable."""
    reader = system_actor(invitation.org_id, "invitation page").principal
    try:
        if invitation.asset_id is not None:
            asset = inventory.get_asset(session, reader, invitation.asset_id)
            return f"the asset {asset.name} and everything below it"
        if invitation.site_id is not None:
            return f"the site {inventory.get_site(session, reader, invitation.site_id).name}"
    except NotFound:
        raise NotFound(GONE) from None
    return "the whole organization"


# --- accepting --------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    user: User
    org_id: str
    grant: Grant


def accept(
    session: Session,
    secret: str,
    *,
    display_name: str,
    password: str,
    meta: RequestMeta,
    confirm: str | None = None,
) -> Accepted:
    """Use the link once: the account (new, or an existing one proven by its password),
    a membership without standing access if there was none, and the grant from now.

    ``confirm`` is the new password typed again (None: not asked for). A wrong password
    for an existing account raises Unauthenticated and counts against the login throttle
    only once the caller records it (:func:`sessions.record_failed_login`, in its own
    transaction: this one rolls back). Two concurrent acceptances cannot both succeed:
    the link is claimed by a conditional UPDATE before anything else is written.
    """
    now = utcnow()
    invitation = _usable(session, secret, now)
    before = invitation.audit_snapshot()
    _claim(session, invitation.id, now)
    inviter = _inviter_now(session, invitation, now)
    user = _account(session, invitation, display_name, password, confirm, meta)
    if user.id == inviter.user_id:
        raise Conflict("This invitation was made by you; it cannot be accepted by you.")
    role = _ensure_member(session, invitation, user, meta)
    actor = Actor(
        Principal(invitation.org_id, user.id, role, user.email),
        dataclasses.replace(meta, reason=meta.reason or f"Accepted invitation {invitation.id}"),
    )
    grant = _give(session, actor, invitation, user, now)
    invitation.used_at = now
    invitation.grant_id = grant.id
    session.flush()
    audit.record(
        session,
        actor,
        [
            audit.Change(
                Action.INVITATION_ACCEPTED,
                invitation.audit_type,
                invitation.id,
                before,
                invitation.audit_snapshot(),
            )
        ],
    )
    return Accepted(user, invitation.org_id, grant)


def _claim(session: Session, invitation_id: str, now: datetime) -> None:
    """Mark the link used, if nobody did in the meantime (the row lock decides)."""
    claimed = session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(GONE)


def _inviter_now(session: Session, invitation: Invitation, now: datetime) -> Principal:
    """The inviter as they are today, who must still be able to give this grant."""
    cannot = Conflict("The person who invited you can no longer give this access; ask them again.")
    inviter_user = session.get(User, invitation.invited_by)
    try:
        if inviter_user is None:
            raise NotFound("No such member.")
        inviter = principal_for(session, inviter_user, invitation.org_id)
        spec = _spec(
            user_id="",
            role=invitation.role,
            reason=invitation.reason,
            site_id=invitation.site_id,
            asset_id=invitation.asset_id,
            minutes=invitation.duration_minutes,
            now=now,
        )
        scope = area_scope(session, inviter, spec.area)
    except NotFound:
        raise cannot from None
    problems = grants.grantor_problems(session, inviter, spec, scope, now)
    if not can(inviter, Permission.GRANT_CREATE, scope) or problems:
        raise Conflict(cannot.detail, problems)
    return inviter


def _account(
    session: Session,
    invitation: Invitation,
    display_name: str,
    password: str,
    confirm: str | None,
    meta: RequestMeta,
) -> User:
    existing = session.scalar(select(User).where(User.email == invitation.email))
    if existing is not None:
        return _proven(session, existing, password, meta)
    return _new_user(session, invitation, display_name, password, confirm, meta)


def _proven(session: Session, user: User, password: str, meta: RequestMeta) -> User:
    """An existing account joins only with its own password (throttled like a login)."""
    throttle.check(session, user.email, meta.source_ip, utcnow())
    if not passwords.verify_password(user.password_hash, password) or not user.is_active:
        raise Unauthenticated("Wrong password.")
    throttle.record_success(session, user.email)
    return user


def _new_user(
    session: Session,
    invitation: Invitation,
    display_name: str,
    password: str,
    confirm: str | None,
    meta: RequestMeta,
) -> User:
    name = display_name.strip() or invitation.email
    problems = password_violations(password, invitation.email)
    if confirm is not None and confirm != password:
        problems.append(Violation("user.password_mismatch", "The two passwords differ.", "confirm"))
    if len(name) > MAX_DISPLAY_NAME:
        problems.append(
            Violation(
                "user.display_name_invalid",
                f"A name has at most {MAX_DISPLAY_NAME} characters.",
                "display_name",
            )
        )
    if problems:
        raise RuleViolation(problems, "The account cannot be created.")
    user = User(
        id=ids.new_id("usr"),
        email=invitation.email,
        display_name=name,
        password_hash=passwords.hash_password(password),
        is_active=True,
        created_at=utcnow(),
    )
    own = Actor(Principal(invitation.org_id, user.id, NO_ROLE, user.email), meta)
    with audit.tracked(session, own, Action.USER_CREATED) as track:
        session.add(user)
        track.obj = user
    return user


def _ensure_member(session: Session, invitation: Invitation, user: User, meta: RequestMeta) -> str:
    """The user's role here: kept if they are a member, else ``NO_ROLE`` (grants only)."""
    role = session.scalar(
        select(Membership.role).where(
            Membership.org_id == invitation.org_id, Membership.user_id == user.id
        )
    )
    if role is not None:
        return role
    own = Actor(Principal(invitation.org_id, user.id, NO_ROLE, user.email), meta)
    with audit.tracked(session, own, Action.MEMBERSHIP_CREATED) as track:
        membership = Membership(
            id=ids.new_id("mem"),
            org_id=invitation.org_id,
            user_id=user.id,
            role=NO_ROLE,
            created_at=utcnow(),
        )
        session.add(membership)
        track.obj = membership
    return NO_ROLE


def _give(
    session: Session, actor: Actor, invitation: Invitation, user: User, now: datetime
) -> Grant:
    """The invitation's grant, given by the inviter, from now for its duration."""
    with audit.tracked(session, actor, Action.GRANT_CREATED) as track:
        grant = Grant(
            id=ids.new_id("grt"),
            org_id=invitation.org_id,
            user_id=user.id,
            role=invitation.role,
            site_id=invitation.site_id,
            asset_id=invitation.asset_id,
            starts_at=now,
            expires_at=now + timedelta(minutes=invitation.duration_minutes),
            reason=invitation.reason,
            granted_by=invitation.invited_by,
            created_at=now,
        )
        session.add(grant)
        track.obj = grant
    return grant


def start_login(
    session: Session, accepted: Accepted, *, meta: RequestMeta, lifetime: timedelta
) -> sessions.StartedSession | sessions.PendingLogin:
    """Log the new member in to the inviting organization, as the login page would: a
    second factor first if they have one, or enrolment if the organization requires MFA."""
    user = accepted.user
    enrolled = factors.has_mfa(session, user.id)
    if enrolled or factors.org_requires_mfa(session, accepted.org_id):
        return sessions.PendingLogin(user.id, accepted.org_id, enrolled)
    return sessions.start_session(session, user, accepted.org_id, meta=meta, lifetime=lifetime)


# --- the inviter's side -----------------------------------------------------------------


def state_of(invitation: Invitation, now: datetime) -> str:
    """ "accepted", "revoked", "expired" or "pending"."""
    if invitation.used_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "pending"


def _state_condition(state: str | None, now: datetime) -> ColumnElement[bool]:
    unused = and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
    conditions: dict[str, ColumnElement[bool]] = {
        "accepted": Invitation.used_at.is_not(None),
        "revoked": and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_not(None)),
        "expired": and_(unused, Invitation.expires_at <= now),
        "pending": and_(unused, Invitation.expires_at > now),
    }
    return conditions.get(state or "", true())


def _visible(principal: Principal) -> ColumnElement[bool]:
    """The invitations a principal made; every one of the organization for a member
    manager."""
    here = Invitation.org_id == principal.org_id
    if can(principal, Permission.MEMBER_MANAGE):
        return here
    return and_(here, Invitation.invited_by == principal.user_id)


@dataclass(frozen=True)
class InvitationFilter:
    #: "pending", "accepted", "revoked", "expired", or None: all.
    state: str | None = None
    limit: int = 50
    cursor: str | None = None


def list_invitations(
    session: Session, principal: Principal, filters: InvitationFilter | None = None
) -> list[Invitation]:
    """Visible invitations, newest first (keyset on id, which grows with time); one more
    than ``limit`` when there is a next page."""
    filters = filters or InvitationFilter()
    query = select(Invitation).where(_visible(principal), _state_condition(filters.state, utcnow()))
    if filters.cursor:
        query = query.where(Invitation.id < filters.cursor)
    return list(session.scalars(query.order_by(Invitation.id.desc()).limit(filters.limit + 1)))


def revoke_invitation(session: Session, actor: Actor, invitation_id: str) -> Invitation:
    """Make a link unusable now: by its inviter or a member manager (others: NotFound).

    Revoking twice changes nothing; an accepted invitation is a grant now, to revoke as one.
    """
    invitation = session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation_id, _visible(actor.principal))
        .with_for_update()
    )
    if invitation is None:
        raise NotFound(f"No invitation {invitation_id}.")
    if invitation.used_at is not None:
        raise Conflict(
            f"The invitation was accepted; revoke its grant {invitation.grant_id} instead."
        )
    if invitation.revoked_at is None:
        with audit.tracked(session, actor, Action.INVITATION_REVOKED, invitation):
            invitation.revoked_at = utcnow()
    return invitation


@dataclass(frozen=True)
class InviteOptions:
    """What the invitation form offers: roles that give something, the visible sites."""

    roles: list[tuple[str, str]]  # name, description
    sites: list[tuple[str, str]]  # id, name
    max_hours: int


def invite_options(session: Session, principal: Principal) -> InviteOptions:
    """The form's choices, for someone who may give access somewhere (else Forbidden)."""
    require_somewhere(principal, Permission.GRANT_CREATE)
    roles = [
        (role.name, role.description)
        for role in list_roles(session, principal)
        if role.name != NO_ROLE
    ]
    try:
        sites = inventory_queries.list_sites(session, principal, SiteFilter(limit=500)).items
    except Forbidden:  # may give access on assets it cannot list sites for: ids only
        sites = []
    longest = grants.max_duration(session, principal.org_id)
    return InviteOptions(
        roles=roles,
        sites=[(site.id, site.name) for site, _count in sites],
        max_hours=int(longest.total_seconds() // 3600),
    )

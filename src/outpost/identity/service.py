"""Identity operations: tenants, users, memberships and API tokens (web sessions are in
``sessions.py``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import BadRequest, Conflict, NotFound, Unauthenticated
from outpost.identity import access, factors, passwords, secrets
from outpost.identity.areas import area_scope
from outpost.identity.authz import authorize, can, permissions_of, require_somewhere
from outpost.identity.custom_roles import role_exists
from outpost.identity.models import ApiToken, Membership, Organization, User
from outpost.identity.principal import EVERYWHERE, Actor, Area, Principal, RequestMeta
from outpost.identity.roles import Permission
from outpost.validation import Violation

LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)


def system_actor(org_id: str, label: str = "system", meta: RequestMeta | None = None) -> Actor:
    """The actor for operator commands run on the server itself (the CLI, the seed)."""
    principal = Principal(org_id=org_id, user_id="system", role="admin", label=label, kind="system")
    return Actor(principal, meta or RequestMeta())


# --- organizations, users, memberships -------------------------------------------------


def create_organization(session: Session, name: str, *, label: str = "cli") -> Organization:
    name = name.strip()
    if not name:
        raise BadRequest("An organization needs a name.")
    if session.scalar(select(Organization.id).where(Organization.name == name)):
        raise Conflict(f"An organization named {name!r} already exists.")
    org = Organization(id=ids.new_id("org"), name=name, created_at=utcnow())
    session.add(org)
    session.flush()
    audit.start_chain(session, org.id)
    actor = system_actor(org.id, label)
    audit.record(
        session,
        actor,
        [audit.Change(Action.ORG_CREATED, "organization", org.id, None, org.audit_snapshot())],
    )
    return org


def get_organization(session: Session, principal: Principal) -> Organization:
    org = session.get(Organization, principal.org_id)
    if org is None:
        raise NotFound("No such organization.")
    return org


def get_organization_by_name(session: Session, name: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"No organization named {name!r}.")
    return org


def add_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    password: str,
    role: str,
    display_name: str | None = None,
) -> User:
    """Create the user if the email is new, and make them a member of the actor's organization."""
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    email = email.strip().lower()
    problems = list(_check_new_user(session, actor.org_id, email, password, role))
    if problems:
        raise BadRequest("The user cannot be created.", problems)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        with audit.tracked(session, actor, Action.USER_CREATED) as track:
            user = User(
                id=ids.new_id("usr"),
                email=email,
                display_name=display_name or email,
                password_hash=passwords.hash_password(password),
                is_active=True,
                created_at=utcnow(),
            )
            session.add(user)
            track.obj = user
    existing = session.scalar(
        select(Membership).where(Membership.org_id == actor.org_id, Membership.user_id == user.id)
    )
    if existing is not None:
        raise Conflict(f"{email} is already a member of this organization.")
    with audit.tracked(session, actor, Action.MEMBERSHIP_CREATED) as track:
        membership = Membership(
            id=ids.new_id("mem"),
            org_id=actor.org_id,
            user_id=user.id,
            role=role,
            created_at=utcnow(),
        )
        session.add(membership)
        track.obj = membership
    return user


def _check_new_user(
    session: Session, org_id: str, email: str, password: str, role: str
) -> list[Violation]:
    problems = []
    if "@" not in email or len(email) > 320:
        problems.append(Violation("user.email_invalid", "Give a valid email address.", "email"))
    problems += password_violations(password, email)
    if not role_exists(session, org_id, role):
        problems.append(Violation("user.role_unknown", f"Unknown role {role!r}.", "role"))
    return problems


def password_violations(password: str, email: str) -> list[Violation]:
    return [
        Violation("user.password_weak", message, "password")
        for message in passwords.password_problems(password, email)
    ]


def get_user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No user with email {email!r}.")
    return user


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    role: str


def list_members(session: Session, principal: Principal) -> list[Member]:
    """The active members of the principal's organization, by email (a directory for
    pickers: any member may see who else belongs to the organization)."""
    rows = session.execute(
        select(User.id, User.email, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == principal.org_id, User.is_active.is_(True))
        .order_by(User.email)
    )
    return [Member(user_id, email, role) for user_id, email, role in rows]


def get_member(session: Session, principal: Principal, user_id: str) -> Member:
    row = session.execute(
        select(User.id, User.email, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == principal.org_id, User.id == user_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No member {user_id}.")
    return Member(*row)


def is_member(session: Session, org_id: str, user_id: str) -> bool:
    """``user_id`` is an active member of ``org_id``."""
    found = session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id, User.id == user_id, User.is_active.is_(True))
    )
    return found is not None


def principal_for(session: Session, user: User, org_id: str) -> Principal:
    """The user acting in ``org_id`` with their current role; NotFound if not a member."""
    role = session.scalar(
        select(Membership.role).where(Membership.org_id == org_id, Membership.user_id == user.id)
    )
    if role is None or not user.is_active:
        raise NotFound("No such member.")
    return Principal(
        org_id=org_id,
        user_id=user.id,
        role=role,
        label=user.email,
        holdings=access.holdings(session, org_id, user.id, role, utcnow()),
    )


# --- API tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    session: Session,
    actor: Actor,
    *,
    name: str,
    expires_in: timedelta | None = None,
    permissions: Collection[str] | None = None,
    area: Area = EVERYWHERE,
    max_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    web_session_id: str | None = None,
) -> IssuedToken:
    """A token for the acting user in the acting organization; it carries what the user
    holds, narrowed to ``permissions`` and to ``area`` (a site or an asset subtree) when
    given, and expires within ``max_lifetime`` (default: at that limit).

    A sensitive action: a user who has MFA (or whose organization requires it) must have
    confirmed a second factor in the web session ``web_session_id`` within 15 minutes, so
    a token of such a user cannot create tokens (see :func:`factors.require_fresh_mfa`).
    """
    require_somewhere(actor.principal, Permission.TOKEN_CREATE)
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    name = name.strip()
    if not name or len(name) > 200:
        raise BadRequest(
            "A token needs a name of 1 to 200 characters.",
            [Violation("token.name_invalid", "Give the token a name.", "name")],
        )
    expires_in = expires_in or max_lifetime
    problems = _token_problems(actor.principal, expires_in, permissions, max_lifetime)
    if problems:
        raise BadRequest("The token cannot be created.", problems)
    area_scope(session, actor.principal, area)  # an unknown site or asset is a 404
    secret, prefix = secrets.new_token()
    now = utcnow()
    with audit.tracked(session, actor, Action.TOKEN_CREATED) as track:
        token = ApiToken(
            id=ids.new_id("tok"),
            org_id=actor.org_id,
            user_id=actor.principal.user_id,
            name=name,
            prefix=prefix,
            secret_hash=secrets.digest(secret),
            created_at=now,
            expires_at=now + expires_in,
            permissions=None if permissions is None else sorted(set(permissions)),
            site_id=area.site_id,
            asset_id=area.asset_id,
        )
        session.add(token)
        track.obj = token
    return IssuedToken(token, secret)


def _token_problems(
    principal: Principal,
    expires_in: timedelta,
    permissions: Collection[str] | None,
    max_lifetime: timedelta,
) -> list[Violation]:
    """Every token expires within ``max_lifetime``, and carries only what its user holds."""
    problems = []
    if not timedelta(0) < expires_in <= max_lifetime:
        problems.append(
            Violation(
                "token.expiry_invalid",
                f"A token must expire within {max_lifetime.days} days.",
                "expires_in_days",
            )
        )
    held = permissions_of(principal)
    for permission in sorted(set(permissions or ())):
        if permission not in held:
            problems.append(
                Violation(
                    "token.permission_not_held",
                    f"You do not hold {permission}, so a token of yours cannot carry it.",
                    "permissions",
                )
            )
    return problems


def list_tokens(session: Session, principal: Principal) -> list[ApiToken]:
    """The caller's own tokens; an admin (token.manage) sees every token of the organization."""
    query = select(ApiToken).where(ApiToken.org_id == principal.org_id)
    if not can(principal, Permission.TOKEN_MANAGE):
        query = query.where(ApiToken.user_id == principal.user_id)
    return list(session.scalars(query.order_by(ApiToken.id)))


def revoke_token(session: Session, actor: Actor, token_id: str) -> ApiToken:
    token = session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.org_id == actor.org_id)
    )
    own = token is not None and token.user_id == actor.principal.user_id
    if token is None or not (own or can(actor.principal, Permission.TOKEN_MANAGE)):
        raise NotFound(f"No token {token_id}.")
    if token.revoked_at is None:
        with audit.tracked(session, actor, Action.TOKEN_REVOKED, token):
            token.revoked_at = utcnow()
    return token


def authenticate_token(session: Session, secret: str) -> tuple[Principal, bool]:
    """Resolve a bearer token to its principal, reading status and role afresh (one query).

    The token must be live, its user active and still a member of the token's
    organization. Returns the principal and whether ``last_used_at`` is due for a refresh.
    """
    row = session.execute(
        select(
            ApiToken.id,
            ApiToken.org_id,
            ApiToken.name,
            ApiToken.prefix,
            ApiToken.expires_at,
            ApiToken.revoked_at,
            ApiToken.last_used_at,
            ApiToken.permissions,
            ApiToken.site_id,
            ApiToken.asset_id,
            User.id.label("user_id"),
            User.email,
            User.is_active,
            Membership.role,
        )
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(
            Membership,
            (Membership.user_id == ApiToken.user_id) & (Membership.org_id == ApiToken.org_id),
        )
        .where(ApiToken.secret_hash == secrets.digest(secret))
    ).one_or_none()
    now = utcnow()
    if (
        row is None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
        or not row.is_active
        or row.role is None
    ):
        raise Unauthenticated("The token is unknown, expired or revoked, or its user left.")
    principal = Principal(
        org_id=row.org_id,
        user_id=row.user_id,
        role=row.role,
        kind="token",
        token_id=row.id,
        token_permissions=None if row.permissions is None else frozenset(row.permissions),
        token_area=Area(row.site_id, row.asset_id),
        holdings=access.holdings(session, row.org_id, row.user_id, row.role, now),
        label=f"{row.email} via token {row.name!r} ({row.prefix})",
    )
    stale = row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION
    return principal, stale


def touch_token(session: Session, token_id: str) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))

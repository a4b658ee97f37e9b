"""Web sessions: logging in (password, then a second factor where one is set up),
resolving a session on every request, logging out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import NotFound, Unauthenticated
from outpost.identity import access, factors, passwords, secrets, throttle
from outpost.identity.models import Membership, User, WebSession
from outpost.identity.principal import Actor, Principal, RequestMeta
from outpost.identity.service import LAST_USED_RESOLUTION, principal_for


@dataclass(frozen=True)
class StartedSession:
    session: WebSession
    secret: str


@dataclass(frozen=True)
class PendingLogin:
    """The password was right, but no session starts before a second factor: the user
    types a code (``enrolled``) or, when the organization requires MFA and they have no
    authenticator, sets one up first."""

    user_id: str
    org_id: str
    enrolled: bool


def log_in(
    session: Session,
    *,
    email: str,
    password: str,
    meta: RequestMeta,
    lifetime: timedelta,
    org_name: str | None = None,
) -> StartedSession | PendingLogin:
    """Check the password and open a server-side session in the user's first organization.

    Refused with 429 while the account or the address is throttled; a refusal for a
    wrong password is the same for unknown and known accounts, and the caller records
    it with :func:`record_failed_login` (in its own transaction: this one rolls back).
    A user with MFA, or in an organization that requires it, gets a :class:`PendingLogin`
    instead of a session: :func:`log_in_second_factor` or :func:`log_in_enrolling` end it.
    """
    now = utcnow()
    throttle.check(session, email, meta.source_ip, now)
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthenticated("Wrong email or password.")
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user.id).order_by(Membership.created_at)
    )
    if membership is None:
        raise Unauthenticated("Wrong email or password.")
    enrolled = factors.has_mfa(session, user.id)
    if enrolled or factors.org_requires_mfa(session, membership.org_id):
        # the account's failure count is cleared only once the second factor passes
        return PendingLogin(user.id, membership.org_id, enrolled)
    throttle.record_success(session, email)
    return start_session(session, user, membership.org_id, meta=meta, lifetime=lifetime)


def start_session(
    session: Session,
    user: User,
    org_id: str,
    *,
    meta: RequestMeta,
    lifetime: timedelta,
    mfa_verified: bool = False,
) -> StartedSession:
    """Open a web session for an authenticated user (``mfa_verified``: with a second factor)."""
    role = session.scalar(
        select(Membership.role).where(Membership.user_id == user.id, Membership.org_id == org_id)
    )
    if role is None:
        raise Unauthenticated("Wrong email or password.")
    now = utcnow()
    secret = secrets.new_session_secret()
    web_session = WebSession(
        id=ids.new_id("ses"),
        secret_hash=secrets.digest(secret),
        user_id=user.id,
        org_id=org_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        source_ip=meta.source_ip,
        user_agent=(meta.user_agent or "")[:400],
        mfa_verified_at=now if mfa_verified else None,
    )
    session.add(web_session)
    actor = Actor(Principal(org_id, user.id, role, user.email), meta)
    after: dict[str, object] = {"session_id": web_session.id}
    if mfa_verified:
        after["mfa"] = True
    audit.record(
        session, actor, [audit.Change(Action.SESSION_STARTED, "user", user.id, None, after)]
    )
    return StartedSession(web_session, secret)


def login_actor(session: Session, pending: PendingLogin, meta: RequestMeta) -> Actor:
    """The user of a login in progress, read afresh (they may have left or been disabled)."""
    user = session.get(User, pending.user_id)
    try:
        if user is None:
            raise NotFound("No such user.")
        return Actor(principal_for(session, user, pending.org_id), meta)
    except NotFound:
        raise Unauthenticated("Log in again.") from None


def log_in_second_factor(
    session: Session,
    pending: PendingLogin,
    *,
    code: str,
    secret_key: str,
    meta: RequestMeta,
    lifetime: timedelta,
) -> StartedSession:
    """End a pending login with a TOTP or recovery code: the session starts MFA-verified.

    A wrong code raises Unauthenticated; the caller records it as a failed login with
    :func:`factors.record_failed_code` (the same throttle as wrong passwords).
    """
    actor = login_actor(session, pending, meta)
    email = actor.principal.label
    throttle.check(session, email, meta.source_ip, utcnow())
    if not factors.verify_second_factor(session, actor, code, secret_key):
        raise Unauthenticated("Wrong code.")
    throttle.record_success(session, email)
    user = session.get_one(User, pending.user_id)
    return start_session(
        session, user, pending.org_id, meta=meta, lifetime=lifetime, mfa_verified=True
    )


def log_in_enrolling(
    session: Session,
    pending: PendingLogin,
    *,
    code: str,
    secret_key: str,
    meta: RequestMeta,
    lifetime: timedelta,
) -> tuple[StartedSession, list[str]]:
    """End a pending login by confirming a new authenticator (begun with
    :func:`factors.begin_enrolment` for :func:`login_actor`): the session starts
    MFA-verified, and the recovery codes are returned to be shown once."""
    actor = login_actor(session, pending, meta)
    codes = factors.confirm_enrolment(session, actor, code, secret_key)
    throttle.record_success(session, actor.principal.label)
    user = session.get_one(User, pending.user_id)
    started = start_session(
        session, user, pending.org_id, meta=meta, lifetime=lifetime, mfa_verified=True
    )
    return started, codes


def record_failed_login(session: Session, email: str, meta: RequestMeta) -> None:
    throttle.record_failure(session, email, meta.source_ip, utcnow())


def resolve_session(
    session: Session, secret: str, *, idle: timedelta
) -> tuple[Principal, str, bool]:
    """The principal of a live web session (one query, read afresh on every request).

    Returns the principal, the session's id, and whether ``last_seen_at`` needs a refresh.
    """
    row = session.execute(
        select(
            WebSession.id,
            WebSession.org_id,
            WebSession.expires_at,
            WebSession.ended_at,
            WebSession.last_seen_at,
            User.id.label("user_id"),
            User.email,
            User.is_active,
            Membership.role,
        )
        .join(User, User.id == WebSession.user_id)
        .outerjoin(
            Membership,
            (Membership.user_id == WebSession.user_id) & (Membership.org_id == WebSession.org_id),
        )
        .where(WebSession.secret_hash == secrets.digest(secret))
    ).one_or_none()
    now = utcnow()
    if (
        row is None
        or row.ended_at is not None
        or row.expires_at <= now
        or now - row.last_seen_at > idle
        or not row.is_active
        or row.role is None
    ):
        raise Unauthenticated("Your session has ended; log in again.")
    principal = Principal(
        org_id=row.org_id,
        user_id=row.user_id,
        role=row.role,
        label=row.email,
        holdings=access.holdings(session, row.org_id, row.user_id, row.role, now),
    )
    return principal, row.id, now - row.last_seen_at > LAST_USED_RESOLUTION


def touch_session(session: Session, session_id: str) -> None:
    session.execute(
        update(WebSession).where(WebSession.id == session_id).values(last_seen_at=utcnow())
    )


def log_out(session: Session, actor: Actor, session_id: str) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    audit.record(
        session,
        actor,
        [
            audit.Change(
                Action.SESSION_ENDED,
                "user",
                actor.principal.user_id,
                {"session_id": session_id},
                None,
            )
        ],
    )

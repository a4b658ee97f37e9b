"""Second factors: TOTP enrolment, recovery codes, the organization's MFA requirement, and
the fresh-MFA check that guards sensitive actions.

Rules chosen here (the README's "Multi-factor authentication" section says the same):

- A user has MFA when they have a *confirmed* TOTP factor. An organization that requires
  MFA sends its members without one to enrolment at login, before any session starts.
- A second factor is a 6-digit TOTP code (±30 s, each time step accepted once) or one of
  ten single-use recovery codes. Using a recovery code is audited.
- :func:`require_fresh_mfa` passes when the user needs no MFA (none enrolled, and the
  organization does not require it), or when the *web session* confirmed a second factor
  within the last 15 minutes. API tokens are not sessions and cannot confirm a factor, so
  a token of a user who needs MFA never passes: those sensitive actions (creating tokens,
  changing the MFA requirement; later grants and roles) are done in the web UI. Server-side
  system actors (CLI, seed) pass.
- Managing one's own factor (enrol, regenerate codes, disable) is for a user principal
  only, never a token. Disabling and regenerating take a valid code; disabling is
  refused while any organization of the user requires MFA.
- Wrong codes count as failed logins for the account (see :mod:`throttle`), so guessing
  codes meets the same progressive wait as guessing passwords. The caller records a failure
  with :func:`record_failed_code` in its own transaction (the failing one rolls back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import segno
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import BadRequest, Conflict, Forbidden, MfaRequired, NotFound
from outpost.identity import throttle, totp
from outpost.identity.authz import authorize
from outpost.identity.models import (
    Membership,
    Organization,
    RecoveryCode,
    TotpFactor,
    User,
    WebSession,
)
from outpost.identity.principal import Actor, Principal, RequestMeta
from outpost.identity.roles import Permission
from outpost.validation import Violation

FRESH_MFA = timedelta(minutes=15)
ISSUER = "Outpost"


@dataclass(frozen=True)
class Enrolment:
    """A pending authenticator: the secret to type in, or the QR code to scan."""

    secret: str
    uri: str
    qr_data_uri: str


@dataclass(frozen=True)
class MfaStatus:
    enabled: bool
    pending: bool
    recovery_codes_left: int
    org_required: bool


# --- reading ----------------------------------------------------------------------------


def has_mfa(session: Session, user_id: str) -> bool:
    """The user has a confirmed TOTP factor."""
    found = session.scalar(
        select(TotpFactor.user_id).where(
            TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
        )
    )
    return found is not None


def org_requires_mfa(session: Session, org_id: str) -> bool:
    return bool(session.scalar(select(Organization.mfa_required).where(Organization.id == org_id)))


def mfa_status(session: Session, principal: Principal) -> MfaStatus:
    factor = session.get(TotpFactor, principal.user_id)
    left = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == principal.user_id, RecoveryCode.used_at.is_(None))
    )
    return MfaStatus(
        enabled=factor is not None and factor.confirmed_at is not None,
        pending=factor is not None and factor.confirmed_at is None,
        recovery_codes_left=int(left or 0) if factor is not None else 0,
        org_required=org_requires_mfa(session, principal.org_id),
    )


# --- enrolment --------------------------------------------------------------------------


def _own_user(session: Session, actor: Actor) -> User:
    """The acting user, managing their own factor in person (not with a token)."""
    if actor.principal.kind != "user":
        raise Forbidden("Manage your authenticator from a logged-in browser session.")
    user = session.get(User, actor.principal.user_id)
    if user is None or not user.is_active:
        raise NotFound("No such user.")
    return user


def _enrolment(secret: str, account: str) -> Enrolment:
    uri = totp.provisioning_uri(secret, account, ISSUER)
    qr = str(segno.make(uri, error="m").svg_data_uri(scale=4))
    return Enrolment(secret=secret, uri=uri, qr_data_uri=qr)


def begin_enrolment(session: Session, actor: Actor, secret_key: str) -> Enrolment:
    """Create (or replace) the user's unconfirmed TOTP factor and return its secret.

    Refused once a factor is confirmed: a second enrolment would let someone who knows
    only the password replace the authenticator.
    """
    user = _own_user(session, actor)
    factor = session.get(TotpFactor, user.id)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("An authenticator is already set up; disable it before adding another.")
    secret = totp.new_secret()
    sealed = totp.encrypt_secret(secret, secret_key, owner=user.id)
    now = utcnow()
    if factor is None:
        session.add(TotpFactor(user_id=user.id, secret_encrypted=sealed, created_at=now))
    else:
        factor.secret_encrypted, factor.created_at, factor.last_step = sealed, now, 0
    session.flush()
    _record(session, actor, Action.MFA_ENROLMENT_STARTED, user.id, None, {"factor": "totp"})
    return _enrolment(secret, user.email)


def pending_enrolment(session: Session, actor: Actor, secret_key: str) -> Enrolment | None:
    """The enrolment started and not yet confirmed, to show its QR code again."""
    user = _own_user(session, actor)
    factor = session.get(TotpFactor, user.id)
    if factor is None or factor.confirmed_at is not None:
        return None
    try:
        secret = totp.decrypt_secret(factor.secret_encrypted, secret_key, owner=user.id)
    except ValueError:
        return None
    return _enrolment(secret, user.email)


def confirm_enrolment(
    session: Session,
    actor: Actor,
    code: str,
    secret_key: str,
    *,
    web_session_id: str | None = None,
) -> list[str]:
    """Confirm the pending factor with its first valid code; return the recovery codes.

    The codes are shown this once (only their hashes are kept). Confirming proves the
    factor, so ``web_session_id`` (when given) counts as freshly verified.
    """
    user = _own_user(session, actor)
    factor = session.get(TotpFactor, user.id)
    if factor is None or factor.confirmed_at is not None:
        raise Conflict("There is no authenticator set-up in progress; start again.")
    secret = _readable_secret(factor, secret_key)
    step = totp.verify(secret, code, utcnow(), factor.last_step) if secret else None
    if step is None:
        raise _wrong_code()
    factor.confirmed_at, factor.last_step = utcnow(), step
    codes = _replace_recovery_codes(session, user.id)
    if web_session_id is not None:
        mark_verified(session, web_session_id)
    _record(
        session,
        actor,
        Action.MFA_ENROLLED,
        user.id,
        None,
        {"factor": "totp", "recovery_codes": len(codes)},
    )
    return codes


def regenerate_recovery_codes(
    session: Session, actor: Actor, code: str, secret_key: str
) -> list[str]:
    """Replace every recovery code (used or not) with ten new ones; needs a valid code."""
    user = _own_user(session, actor)
    _require_code(session, actor, user.id, code, secret_key)
    codes = _replace_recovery_codes(session, user.id)
    _record(
        session,
        actor,
        Action.MFA_RECOVERY_CODES_REGENERATED,
        user.id,
        None,
        {"recovery_codes": len(codes)},
    )
    return codes


def disable_mfa(session: Session, actor: Actor, code: str, secret_key: str) -> None:
    """Remove the user's factor and recovery codes; needs a valid code, and is refused
    while one of the user's organizations requires MFA."""
    user = _own_user(session, actor)
    if not has_mfa(session, user.id):
        raise Conflict("You have no authenticator to disable.")
    required = session.scalar(
        select(Organization.name)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == user.id, Organization.mfa_required.is_(True))
        .limit(1)
    )
    if required is not None:
        raise Forbidden(f"{required} requires MFA: you cannot turn it off.")
    _require_code(session, actor, user.id, code, secret_key)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(delete(TotpFactor).where(TotpFactor.user_id == user.id))
    _record(session, actor, Action.MFA_DISABLED, user.id, {"factor": "totp"}, None)


# --- checking codes ---------------------------------------------------------------------


def verify_second_factor(session: Session, actor: Actor, code: str, secret_key: str) -> bool:
    """Check a TOTP code or a recovery code of the acting user, and use it up.

    A TOTP code's time step is recorded (a code works once); a recovery code is marked
    used and its use audited. Only the principal's own factor is checked.
    """
    return _use_code(session, actor, actor.principal.user_id, code, secret_key) is not None


def _use_code(
    session: Session, actor: Actor, user_id: str, code: str, secret_key: str
) -> str | None:
    """``"totp"`` or ``"recovery_code"`` when ``code`` is valid (and now used), else None."""
    factor = session.get(TotpFactor, user_id)
    if factor is None or factor.confirmed_at is None:
        return None
    if totp.looks_like_recovery_code(code):
        return "recovery_code" if _use_recovery_code(session, actor, user_id, code) else None
    secret = _readable_secret(factor, secret_key)
    step = totp.verify(secret, code, utcnow(), factor.last_step) if secret else None
    if step is None:
        return None
    # conditional write: of two concurrent uses of one code, only one moves last_step
    moved = session.execute(
        update(TotpFactor)
        .where(TotpFactor.user_id == user_id, TotpFactor.last_step < step)
        .values(last_step=step)
        .returning(TotpFactor.user_id)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        return None
    session.refresh(factor)
    return "totp"


def _use_recovery_code(session: Session, actor: Actor, user_id: str, code: str) -> bool:
    used = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == totp.recovery_code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .returning(RecoveryCode.id)
        .execution_options(synchronize_session=False)
    ).first()
    if used is None:
        return False
    left = session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    _record(
        session,
        actor,
        Action.MFA_RECOVERY_USED,
        user_id,
        None,
        {"recovery_code_id": used.id, "recovery_codes_left": int(left or 0)},
    )
    return True


def _readable_secret(factor: TotpFactor, secret_key: str) -> str | None:
    try:
        return totp.decrypt_secret(factor.secret_encrypted, secret_key, owner=factor.user_id)
    except ValueError:  # the app's secret key changed: only recovery codes work now
        return None


def _require_code(session: Session, actor: Actor, user_id: str, code: str, secret_key: str) -> None:
    email = session.scalar(select(User.email).where(User.id == user_id)) or ""
    throttle.check(session, email, actor.meta.source_ip, utcnow())
    if _use_code(session, actor, user_id, code, secret_key) is None:
        raise _wrong_code()


def _wrong_code() -> BadRequest:
    message = "The code is wrong or was already used."
    return BadRequest(message, [Violation("mfa.code_invalid", message, "code")])


def record_failed_code(session: Session, user_id: str, meta: RequestMeta) -> None:
    """Count a wrong second-factor code as a failed login of the account and address."""
    email = session.scalar(select(User.email).where(User.id == user_id))
    if email is not None:
        throttle.record_failure(session, email, meta.source_ip, utcnow())


def _replace_recovery_codes(session: Session, user_id: str) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = totp.new_recovery_codes()
    now = utcnow()
    session.add_all(
        RecoveryCode(
            id=ids.new_id("rec"),
            user_id=user_id,
            code_hash=totp.recovery_code_hash(code),
            created_at=now,
        )
        for code in codes
    )
    session.flush()
    return codes


# --- fresh MFA for sensitive actions ----------------------------------------------------


def mark_verified(session: Session, web_session_id: str) -> None:
    """The web session has just confirmed a second factor."""
    session.execute(
        update(WebSession)
        .where(WebSession.id == web_session_id)
        .values(mfa_verified_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def confirm_fresh_mfa(
    session: Session, actor: Actor, web_session_id: str, code: str, secret_key: str
) -> None:
    """Check a code for the session's user and mark the session as freshly verified.

    BadRequest (``mfa.code_invalid``) for a wrong code; 429 while the account is throttled.
    """
    user_id = actor.principal.user_id
    owner = session.scalar(select(WebSession.user_id).where(WebSession.id == web_session_id))
    if actor.principal.kind != "user" or owner != user_id:
        raise Forbidden("Only a logged-in browser session can confirm a second factor.")
    _require_code(session, actor, user_id, code, secret_key)
    mark_verified(session, web_session_id)
    _record(session, actor, Action.MFA_VERIFIED, user_id, None, {"session_id": web_session_id})


def require_fresh_mfa(
    session: Session,
    principal: Principal,
    web_session_id: str | None,
    *,
    max_age: timedelta = FRESH_MFA,
) -> None:
    """Raise :class:`MfaRequired` unless the principal may do a sensitive action now.

    Passes for system actors and the server's CLI, and for users who need no MFA (none
    enrolled and the organization does not require it). Otherwise the web session
    ``web_session_id`` must have confirmed a second factor within ``max_age``. A token
    principal, or a user principal without a web session, never passes when MFA is needed:
    an API token cannot confirm a factor, so the action must be done in the web UI.
    """
    if principal.kind in {"system", "cli"}:  # on the server itself, with database access
        return
    enrolled = has_mfa(session, principal.user_id)
    if not enrolled and not org_requires_mfa(session, principal.org_id):
        return
    if not enrolled:
        raise MfaRequired(
            "Your organization requires MFA: set up an authenticator first.", enrolled=False
        )
    if principal.kind == "token":
        raise MfaRequired(
            "This action needs a second factor confirmed in the web UI; an API token cannot do it."
        )
    if web_session_id is None:
        raise MfaRequired("This action needs a second factor confirmed in a web session.")
    verified_at = session.scalar(
        select(WebSession.mfa_verified_at).where(
            WebSession.id == web_session_id, WebSession.user_id == principal.user_id
        )
    )
    if verified_at is None or utcnow() - verified_at > max_age:
        minutes = int(max_age.total_seconds() // 60)
        raise MfaRequired(
            f"Confirm with your authenticator code: this action needs MFA from the last "
            f"{minutes} minutes."
        )


# --- the organization's requirement -----------------------------------------------------


def set_mfa_required(
    session: Session, actor: Actor, required: bool, *, web_session_id: str | None = None
) -> Organization:
    """Require MFA of every member of the actor's organization (or stop requiring it).

    Needs ``member.manage`` and, when the admin has MFA, a fresh confirmation. Members
    without a factor are sent to enrolment at their next login; open sessions go on.
    """
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    org = session.get(Organization, actor.org_id)
    if org is None:
        raise NotFound("No such organization.")
    if org.mfa_required == required:
        return org
    require_fresh_mfa(session, actor.principal, web_session_id)
    before = {**org.audit_snapshot(), "mfa_required": org.mfa_required}
    org.mfa_required = required
    session.flush()
    after = {**org.audit_snapshot(), "mfa_required": org.mfa_required}
    _record(session, actor, Action.ORG_UPDATED, org.id, before, after, object_type="organization")
    return org


def _record(
    session: Session,
    actor: Actor,
    action: Action,
    object_id: str,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
    *,
    object_type: str = "user",
) -> None:
    audit.record(session, actor, [audit.Change(action, object_type, object_id, before, after)])

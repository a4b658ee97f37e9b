"""A user's own account: their sessions, logging out everywhere, changing their password.

Changing the password ends every other session and revokes every API token of the user,
in every organization, in the same transaction: a stolen session or token stops working
on its next request.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import BadRequest, NotFound
from outpost.identity import passwords
from outpost.identity.models import ApiToken, User, WebSession
from outpost.identity.principal import Actor, Principal
from outpost.identity.service import password_violations, system_actor
from outpost.validation import Violation


def list_sessions(session: Session, principal: Principal) -> list[WebSession]:
    """The user's open web sessions in this organization, newest first."""
    now = utcnow()
    return list(
        session.scalars(
            select(WebSession)
            .where(
                WebSession.user_id == principal.user_id,
                WebSession.org_id == principal.org_id,
                WebSession.ended_at.is_(None),
                WebSession.expires_at > now,
            )
            .order_by(WebSession.created_at.desc())
        )
    )


def _end_sessions(session: Session, user_id: str, keep: str | None = None) -> int:
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    ended = session.execute(query.values(ended_at=utcnow()))
    return int(ended.rowcount)  # type: ignore[attr-defined]


def log_out_everywhere(session: Session, actor: Actor) -> int:
    """End every web session of the user, this one included; how many were open."""
    user_id = actor.principal.user_id
    count = _end_sessions(session, user_id)
    audit.record(
        session,
        actor,
        [audit.Change(Action.SESSION_ENDED, "user", user_id, None, {"everywhere": count})],
    )
    return count


def change_password(
    session: Session, actor: Actor, *, current: str, new: str, keep_session_id: str | None
) -> None:
    """Replace the password; end the user's other sessions and revoke all their tokens."""
    user = session.get(User, actor.principal.user_id)
    if user is None:
        raise NotFound("No such user.")
    problems = password_violations(new, user.email)
    if not passwords.verify_password(user.password_hash, current):
        problems.insert(
            0,
            Violation("user.password_wrong", "Your current password is not right.", "current"),
        )
    if problems:
        raise BadRequest("The password was not changed.", problems)
    with audit.tracked(session, actor, Action.PASSWORD_CHANGED, user):
        user.password_hash = passwords.hash_password(new)
        user.password_changed_at = utcnow()
    _end_sessions(session, user.id, keep=keep_session_id)
    _revoke_tokens(session, user)


def _revoke_tokens(session: Session, user: User) -> None:
    tokens = list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        )
    )
    by_org: dict[str, list[audit.Change]] = defaultdict(list)
    now = utcnow()
    for token in tokens:
        before = token.audit_snapshot()
        token.revoked_at = now
        by_org[token.org_id].append(
            audit.Change(Action.TOKEN_REVOKED, "token", token.id, before, token.audit_snapshot())
        )
    session.flush()
    for org_id, changes in by_org.items():
        audit.record(session, system_actor(org_id, f"{user.email} changed their password"), changes)

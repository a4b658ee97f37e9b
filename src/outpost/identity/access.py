"""What a user holds right now: read afresh at the start of every request, never cached.

A member holds their membership's role on the whole organization, plus every grant
that has started, has not expired and was not revoked. Expiry is compared with the
clock here, so a grant ends at ``expires_at`` with no job running.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from outpost.identity.models import CustomRole, Grant
from outpost.identity.principal import Area, Holding
from outpost.identity.roles import BUILTIN_ROLES, NOT_DELEGABLE, known_permissions


def live(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """A grant in force at ``now``."""
    return and_(
        Grant.revoked_at.is_(None),
        Grant.starts_at <= now,
        or_(Grant.expires_at.is_(None), Grant.expires_at > now),
    )


def role_permissions(
    session: Session, org_id: str, names: Collection[str]
) -> dict[str, frozenset[str]]:
    """Each role name's permissions: built-in ones from code, the organization's own from
    ``custom_roles`` (one query, only when a custom name is asked for). Unknown: none."""
    found: dict[str, frozenset[str]] = {
        name: frozenset(BUILTIN_ROLES[name]) for name in names if name in BUILTIN_ROLES
    }
    custom = sorted(set(names) - found.keys())
    if custom:
        rows = session.execute(
            select(CustomRole.name, CustomRole.permissions).where(
                CustomRole.org_id == org_id, CustomRole.name.in_(custom)
            )
        )
        found.update({name: frozenset(known_permissions(perms)) for name, perms in rows})
    return {name: found.get(name, frozenset()) for name in names}


#: The user's live grants: built once (this runs on every request), run with parameters.
LIVE_GRANTS = select(Grant.id, Grant.role, Grant.site_id, Grant.asset_id, Grant.expires_at).where(
    Grant.org_id == bindparam("org_id"),
    Grant.user_id == bindparam("user_id"),
    live(bindparam("now")),
)


def holdings(
    session: Session, org_id: str, user_id: str, role: str, now: datetime
) -> tuple[Holding, ...]:
    """The membership's role on the whole organization, then every live grant. A temporary
    grant never carries ``grant.create`` or ``token.create``: its holder cannot delegate."""
    params = {"org_id": org_id, "user_id": user_id, "now": now}
    grants = session.execute(LIVE_GRANTS, params).all()
    by_role = role_permissions(session, org_id, {role, *(grant.role for grant in grants)})
    found = [Holding(by_role[role])] if by_role[role] else []
    for grant in grants:
        held = by_role[grant.role]
        if grant.expires_at is not None:
            held = held - NOT_DELEGABLE
        found.append(Holding(held, Area(grant.site_id, grant.asset_id), grant.expires_at, grant.id))
    return tuple(found)

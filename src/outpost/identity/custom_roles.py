"""An organization's own roles, beside the built-in ones.

Changing a role's permissions changes what its holders may do from their next request
on (holdings are read afresh). A role still held, asked for or offered cannot be
deleted. Creating, changing and deleting roles is sensitive: it needs ``member.manage``
and a fresh MFA check.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import Conflict, NotFound, RuleViolation, require_revision
from outpost.identity import factors
from outpost.identity.authz import authorize
from outpost.identity.models import AccessRequest, CustomRole, Grant, Invitation, Membership
from outpost.identity.principal import Actor, Principal
from outpost.identity.roles import BUILTIN_ROLES, ROLE_DESCRIPTIONS, Permission, is_builtin
from outpost.validation import Violation

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")


@dataclass(frozen=True)
class RoleView:
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    revision: int


def role_exists(session: Session, org_id: str, name: str) -> bool:
    if is_builtin(name):
        return True
    found = session.scalar(
        select(CustomRole.id).where(CustomRole.org_id == org_id, CustomRole.name == name)
    )
    return found is not None


def list_roles(session: Session, principal: Principal) -> list[RoleView]:
    """Every role a member of the organization can be given: built-in, then custom."""
    builtin = [
        RoleView(name, ROLE_DESCRIPTIONS[name], sorted(held), True, 1)
        for name, held in BUILTIN_ROLES.items()
    ]
    custom = session.scalars(
        select(CustomRole).where(CustomRole.org_id == principal.org_id).order_by(CustomRole.name)
    )
    return builtin + [_view(role) for role in custom]


def _view(role: CustomRole) -> RoleView:
    return RoleView(role.name, role.description, sorted(role.permissions), False, role.revision)


def get_role(session: Session, principal: Principal, name: str) -> RoleView:
    if is_builtin(name):
        return RoleView(name, ROLE_DESCRIPTIONS[name], sorted(BUILTIN_ROLES[name]), True, 1)
    return _view(_custom(session, principal.org_id, name))


def _custom(session: Session, org_id: str, name: str, *, lock: bool = False) -> CustomRole:
    query = select(CustomRole).where(CustomRole.org_id == org_id, CustomRole.name == name)
    role = session.scalar(query.with_for_update() if lock else query)
    if role is None:
        raise NotFound(f"No custom role {name!r}.")
    return role


def _checked_permissions(permissions: Collection[str]) -> list[str]:
    known = {p.value for p in Permission}
    unknown = sorted(set(permissions) - known)
    if unknown:
        raise RuleViolation(
            [
                Violation("role.permission_unknown", f"Unknown permission {p!r}.", "permissions")
                for p in unknown
            ],
            "Unknown permissions.",
        )
    return sorted(set(permissions))


def create_role(
    session: Session,
    actor: Actor,
    *,
    name: str,
    permissions: Collection[str],
    description: str = "",
    web_session_id: str | None = None,
) -> CustomRole:
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    if not ROLE_NAME.fullmatch(name) or is_builtin(name):
        raise RuleViolation(
            [
                Violation(
                    "role.name_invalid",
                    "Use 2-40 lowercase letters, digits, - or _, starting with a letter, "
                    "and not a built-in role's name.",
                    "name",
                )
            ],
            "The role name is not valid.",
        )
    if role_exists(session, actor.org_id, name):
        raise Conflict(
            f"A role named {name!r} already exists.",
            [Violation("role.name_taken", "This name is taken.", "name")],
        )
    now = utcnow()
    with audit.tracked(session, actor, Action.ROLE_CREATED) as track:
        role = CustomRole(
            id=ids.new_id("rol"),
            org_id=actor.org_id,
            name=name,
            description=description,
            permissions=_checked_permissions(permissions),
            revision=1,
            created_at=now,
            updated_at=now,
        )
        session.add(role)
        track.obj = role
    return role


def update_role(
    session: Session,
    actor: Actor,
    name: str,
    *,
    if_revision: int,
    permissions: Collection[str] | None = None,
    description: str | None = None,
    web_session_id: str | None = None,
) -> CustomRole:
    role = _custom(session, actor.org_id, name, lock=True)
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    require_revision(role.revision, if_revision, role.audit_snapshot(), f"Role {name}")
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    with audit.tracked(session, actor, Action.ROLE_UPDATED, role):
        if permissions is not None:
            role.permissions = _checked_permissions(permissions)
        if description is not None:
            role.description = description
        role.revision += 1
        role.updated_at = utcnow()
    return role


def delete_role(
    session: Session,
    actor: Actor,
    name: str,
    *,
    if_revision: int,
    web_session_id: str | None = None,
) -> None:
    role = _custom(session, actor.org_id, name, lock=True)
    authorize(actor.principal, Permission.MEMBER_MANAGE)
    require_revision(role.revision, if_revision, role.audit_snapshot(), f"Role {name}")
    factors.require_fresh_mfa(session, actor.principal, web_session_id)
    uses = _uses(session, actor.org_id, name)
    if uses:
        raise Conflict(
            f"Role {name!r} is still in use ({', '.join(uses)}); take it away first.",
            [Violation("role.in_use", f"Still used by {', '.join(uses)}.", "name")],
        )
    with audit.tracked(session, actor, Action.ROLE_DELETED, role) as track:
        session.delete(role)
        track.deleted = True


def _uses(session: Session, org_id: str, name: str) -> list[str]:
    now = utcnow()
    counts = {
        "members": select(func.count())
        .select_from(Membership)
        .where(Membership.org_id == org_id, Membership.role == name),
        "grants": select(func.count())
        .select_from(Grant)
        .where(
            Grant.org_id == org_id,
            Grant.role == name,
            Grant.revoked_at.is_(None),
            or_(Grant.expires_at.is_(None), Grant.expires_at > now),
        ),
        "pending requests": select(func.count())
        .select_from(AccessRequest)
        .where(
            AccessRequest.org_id == org_id,
            AccessRequest.role == name,
            AccessRequest.status == "pending",
        ),
        "open invitations": select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.org_id == org_id,
            Invitation.role == name,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        ),
    }
    return [
        f"{n} {what}" for what, query in counts.items() if (n := session.scalar(query) or 0) > 0
    ]

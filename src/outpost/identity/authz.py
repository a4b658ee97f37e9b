"""The single authorization decision point."""

from __future__ import annotations

from outpost.errors import Forbidden, NotFound
from outpost.identity.principal import Principal
from outpost.identity.roles import ROLES, Permission


def authorize(principal: Principal, permission: Permission, org_id: str | None = None) -> None:
    """Raise unless ``principal`` holds ``permission`` in ``org_id`` (default: its own).

    Another organization's object is answered as missing, never as forbidden.
    """
    if org_id is not None and org_id != principal.org_id:
        raise NotFound("No such object.")
    if permission not in ROLES.get(principal.role, frozenset()):
        raise Forbidden(f"Your role ({principal.role}) does not allow {permission}.")
    if not can(principal, permission):
        raise Forbidden(f"This API token is not scoped for {permission}.")


def permissions_of(principal: Principal) -> frozenset[str]:
    """The role's permissions, narrowed by the token's own list when it has one."""
    held: frozenset[str] = ROLES.get(principal.role, frozenset())
    if principal.token_permissions is not None:
        held = held & principal.token_permissions
    return held


def can(principal: Principal, permission: Permission) -> bool:
    return permission in permissions_of(principal)

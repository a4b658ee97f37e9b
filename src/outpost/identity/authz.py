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


def can(principal: Principal, permission: Permission) -> bool:
    return permission in ROLES.get(principal.role, frozenset())

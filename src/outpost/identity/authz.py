"""The single authorization decision point.

A principal holds permissions on areas (``Holding``): the whole organization, a site,
or an asset subtree; a token narrows them to its own permissions and area. A decision
is taken afresh for each call from what was read at the start of the request: grants
that ended, revoked tokens and changed roles count from the next request on.
"""

from __future__ import annotations

from dataclasses import dataclass

from outpost.errors import Forbidden
from outpost.identity.principal import ORGANIZATION, Area, Holding, Principal, Scope
from outpost.identity.roles import BUILTIN_ROLES, ORGANIZATION_ONLY, Permission


def holdings_of(principal: Principal) -> tuple[Holding, ...]:
    if principal.holdings is not None:
        return principal.holdings
    return (Holding(BUILTIN_ROLES.get(principal.role, frozenset())),)


def _usable(principal: Principal, holding: Holding) -> frozenset[str]:
    """What a holding gives: narrowed by the token, and without the organization-only
    permissions when it is held on part of the organization."""
    held = holding.permissions
    if principal.token_permissions is not None:
        held = held & principal.token_permissions
    if not holding.area.whole:
        held = held - ORGANIZATION_ONLY
    return held


def can(principal: Principal, permission: Permission, scope: Scope = ORGANIZATION) -> bool:
    """``principal`` holds ``permission`` on a resource at ``scope`` (default: on the
    organization itself, which only organization-wide holdings reach)."""
    if not principal.token_area.covers(scope):
        return False
    return any(
        permission in _usable(principal, holding) and holding.area.covers(scope)
        for holding in holdings_of(principal)
    )


def authorize(principal: Principal, permission: Permission, scope: Scope = ORGANIZATION) -> None:
    """Raise Forbidden unless ``principal`` holds ``permission`` at ``scope``.

    Callers look the object up in the principal's organization first (another tenant's
    object is NotFound, never Forbidden) and pass where it sits.
    """
    if not can(principal, permission, scope):
        where = "here" if scope.site_id or scope.path else "on the whole organization"
        raise Forbidden(f"You do not hold {permission} {where}.")


@dataclass(frozen=True, slots=True)
class Reach:
    """Where a permission is held: anywhere in ``areas``, and only within ``within``
    (a token's narrowing). Lists turn it into a SQL filter."""

    areas: tuple[Area, ...]
    within: Area

    @property
    def everywhere(self) -> bool:
        return self.within.whole and any(area.whole for area in self.areas)

    @property
    def nowhere(self) -> bool:
        return not self.areas


def reach(principal: Principal, permission: Permission) -> Reach:
    areas = tuple(
        holding.area
        for holding in holdings_of(principal)
        if permission in _usable(principal, holding)
    )
    return Reach(areas, principal.token_area)


def require_somewhere(principal: Principal, permission: Permission) -> Reach:
    """The reach of ``permission``; Forbidden if it is held nowhere (before listing)."""
    found = reach(principal, permission)
    if found.nowhere:
        raise Forbidden(f"You do not hold {permission} anywhere.")
    return found


def permissions_of(principal: Principal) -> frozenset[str]:
    """Every permission the principal holds somewhere, narrowed by its token."""
    held: frozenset[str] = frozenset()
    for holding in holdings_of(principal):
        held |= _usable(principal, holding)
    return held

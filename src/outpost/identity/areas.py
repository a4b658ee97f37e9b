"""Naming an area of the organization: checked against the inventory it points into."""

from __future__ import annotations

from sqlalchemy.orm import Session

from outpost.errors import NotFound
from outpost.identity.principal import Area, Principal, Scope
from outpost.inventory import scopes
from outpost.inventory import service as inventory


def area_scope(session: Session, principal: Principal, area: Area) -> Scope:
    """Where an area sits. Its site or asset must exist in the principal's organization
    and be in their sight: one out of reach is NotFound, like a missing one."""
    if area.asset_id is not None:
        asset = inventory.get_asset(session, principal, area.asset_id)
        return scopes.asset_scope(session, principal, asset)
    if area.site_id is not None:
        return scopes.site_scope(inventory.get_site(session, principal, area.site_id).id)
    return Scope()


def existing_area_scope(session: Session, principal: Principal, area: Area) -> Scope:
    """Where an area sits, whether or not the principal can see it (one asks for access
    to what one cannot reach yet); it must exist in their organization."""
    if area.asset_id is not None:
        return inventory.scope_of(session, principal, asset_id=area.asset_id)
    if area.site_id is not None:
        if not inventory.site_exists(session, principal.org_id, area.site_id):
            raise NotFound(f"No site {area.site_id}.")
        return scopes.site_scope(area.site_id)
    return Scope()

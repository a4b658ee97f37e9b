"""Naming an area of the organization: checked against the inventory it points into."""

from __future__ import annotations

from sqlalchemy.orm import Session

from outpost.errors import NotFound
from outpost.identity.principal import Area, Principal, Scope
from outpost.inventory import service as inventory


def area_scope(session: Session, principal: Principal, area: Area) -> Scope:
    """Where an area sits; its site or asset must exist in the principal's organization."""
    if area.asset_id is not None:
        return inventory.scope_of(session, principal, asset_id=area.asset_id)
    if area.site_id is not None:
        if not inventory.site_exists(session, principal.org_id, area.site_id):
            raise NotFound(f"No site {area.site_id}.")
        return inventory.scope_of(session, principal, site_id=area.site_id)
    return Scope()

"""Where inventory objects sit, for authorization: a site's scope, an asset's path up its
tree, and the SQL filters that turn a principal's reach into the rows they may see.

A holding on an asset subtree covers that asset and everything below it, and lets its
holder see the site the subtree is on (its name and code, not its other assets).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, literal, or_, select, true
from sqlalchemy.orm import Session

from outpost.identity.authz import Reach, can, holdings_of, reach
from outpost.identity.principal import Area, Principal, Scope
from outpost.identity.roles import Permission
from outpost.inventory.models import Asset, Site
from outpost.inventory.state import AssetState

MAX_DEPTH = 32


def site_scope(site_id: str) -> Scope:
    return Scope(site_id)


def _uses_subtrees(principal: Principal) -> bool:
    """Only holdings (or a token) on asset subtrees need an asset's ancestors."""
    areas = [holding.area for holding in holdings_of(principal)] + [principal.token_area]
    return any(area.asset_id is not None for area in areas)


def _path_query() -> Select[tuple[str]]:
    """An asset's ancestors and itself, top first: built once, run with ``asset_id``."""
    up = (
        select(Asset.id, Asset.parent_id, literal(0).label("depth"))
        .where(Asset.id == bindparam("asset_id"))
        .cte("up", recursive=True)
    )
    up = up.union_all(
        select(Asset.id, Asset.parent_id, up.c.depth + 1)
        .join(up, Asset.id == up.c.parent_id)
        .where(up.c.depth < MAX_DEPTH)
    )
    return select(up.c.id).order_by(up.c.depth.desc())


PATH = _path_query()


def asset_scope(session: Session, principal: Principal, asset: Asset) -> Scope:
    """The asset's site and its path from the top of its tree (one recursive query, and
    only for principals holding something on a subtree)."""
    if not _uses_subtrees(principal):
        return Scope(asset.site_id, (asset.id,))
    path = session.scalars(PATH, {"asset_id": asset.id})
    return Scope(asset.site_id, tuple(str(node) for node in path))


def planned_scope(assets: Mapping[str, AssetState], asset_id: str) -> Scope:
    """An asset's scope within a planned state (every asset of its site is loaded)."""
    asset = assets[asset_id]
    path = [asset.id]
    parent_id = asset.parent_id
    while parent_id is not None and parent_id in assets and len(path) < MAX_DEPTH:
        path.append(parent_id)
        parent_id = assets[parent_id].parent_id
    return Scope(asset.site_id, tuple(reversed(path)))


def can_see_site(session: Session, principal: Principal, site_id: str) -> bool:
    """The site itself may be read: ``site.read`` on it or on the organization, or
    ``asset.read`` on a subtree of it (its holder sees the site the subtree is on)."""
    if can(principal, Permission.SITE_READ, site_scope(site_id)):
        return True
    found = reach(principal, Permission.ASSET_READ)
    roots = [area.asset_id for area in found.areas if area.asset_id is not None]
    if not roots or not _contains_site(found.within, site_id):
        return False
    hit = session.scalar(
        select(Asset.id).where(Asset.id.in_(roots), Asset.site_id == site_id).limit(1)
    )
    return hit is not None


def _contains_site(area: Area, site_id: str) -> bool:
    return area.whole or area.site_id == site_id


# --- SQL filters --------------------------------------------------------------------------


def subtree_ids(root_id: str) -> ColumnElement[bool]:
    """``Asset.id`` is ``root_id`` or below it. Each subtree gets a CTE of its own name
    (SQLAlchemy's anonymous one), so that a filter may hold several."""
    down = select(Asset.id).where(Asset.id == root_id).cte(recursive=True)
    down = down.union_all(select(Asset.id).join(down, Asset.parent_id == down.c.id))
    return Asset.id.in_(select(down.c.id))


def assets_within_area(area: Area) -> ColumnElement[bool]:
    """A filter on ``Asset`` for the rows inside ``area``."""
    if area.asset_id is not None:
        return subtree_ids(area.asset_id)
    if area.site_id is not None:
        return Asset.site_id == area.site_id
    return true()


def assets_within(reach: Reach) -> ColumnElement[bool]:
    """A filter on ``Asset`` for the rows ``reach`` covers."""
    if reach.everywhere:
        return true()
    if reach.nowhere:
        return false()
    return and_(
        or_(*(assets_within_area(area) for area in reach.areas)), assets_within_area(reach.within)
    )


def _site_in(area: Area) -> ColumnElement[bool]:
    """The site is ``area``, or holds the subtree ``area``."""
    if area.asset_id is not None:
        return Site.id.in_(select(Asset.site_id).where(Asset.id == area.asset_id))
    if area.site_id is not None:
        return Site.id == area.site_id
    return true()


def sites_within(reach: Reach, subtrees: Reach) -> ColumnElement[bool]:
    """A filter on ``Site`` for the sites ``reach`` (of ``site.read``) covers, and those
    that hold a subtree of ``subtrees`` (the reach of ``asset.read``)."""
    if reach.everywhere:
        return true()
    shown = [_site_in(area) for area in reach.areas if area.asset_id is None]
    shown += [_site_in(area) for area in subtrees.areas if area.asset_id is not None]
    if not shown:
        return false()
    return and_(or_(*shown), _site_in(reach.within))

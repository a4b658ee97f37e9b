"""Read-side queries: filtered, scoped to one organization, keyset-paginated."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, func, literal_column, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute, Session

from outpost.errors import Forbidden
from outpost.identity.authz import reach, require_somewhere
from outpost.identity.principal import Principal
from outpost.identity.roles import Permission
from outpost.inventory import scopes
from outpost.inventory.models import Asset, Site
from outpost.inventory.schemas import AssetFilter, SiteFilter
from outpost.pagination import Page, decode_cursor, page_of


def has_tag(
    session: Session, column: InstrumentedAttribute[list[str]], tag: str
) -> ColumnElement[bool]:
    """``tag`` is in the JSON array ``column``; an index-friendly form on each engine."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(column, JSONB).contains([tag])
    values = func.json_each(column).table_valued("value")
    return exists(select(literal_column("1")).select_from(values).where(values.c.value == tag))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_assets(session: Session, principal: Principal, filters: AssetFilter) -> Page[Asset]:
    """The assets the principal may read, filtered in SQL."""
    reach = require_somewhere(principal, Permission.ASSET_READ)
    query = select(Asset).where(Asset.org_id == principal.org_id, scopes.assets_within(reach))
    if filters.site_id:
        query = query.where(Asset.site_id == filters.site_id)
    if filters.type:
        query = query.where(Asset.type == filters.type)
    if filters.parent_id:
        query = query.where(Asset.parent_id == filters.parent_id)
    if filters.tag:
        query = query.where(has_tag(session, Asset.tags, filters.tag))
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(
            or_(Asset.name.ilike(pattern, escape="\\"), Asset.serial.ilike(pattern, escape="\\"))
        )
    after = decode_cursor(filters.cursor)
    if after:
        query = query.where(Asset.id > after)
    rows = list(session.scalars(query.order_by(Asset.id).limit(filters.limit + 1)))
    return page_of(rows, filters.limit, lambda asset: asset.id)


def list_sites(
    session: Session, principal: Principal, filters: SiteFilter
) -> Page[tuple[Site, int]]:
    """The sites the principal may see, in code order, each with the number of its assets
    they may read: counted for this page's sites only, in one grouped query (no N+1, and
    no count over the whole organization)."""
    site_reach = reach(principal, Permission.SITE_READ)
    asset_reach = reach(principal, Permission.ASSET_READ)
    if site_reach.nowhere and asset_reach.nowhere:
        raise Forbidden(f"You do not hold {Permission.SITE_READ} anywhere.")
    query = select(Site).where(
        Site.org_id == principal.org_id, scopes.sites_within(site_reach, asset_reach)
    )
    if filters.tag:
        query = query.where(has_tag(session, Site.tags, filters.tag))
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(
            or_(Site.name.ilike(pattern, escape="\\"), Site.code.ilike(pattern, escape="\\"))
        )
    after = decode_cursor(filters.cursor)
    if after:
        query = query.where(Site.code > after)
    page = page_of(
        list(session.scalars(query.order_by(Site.code).limit(filters.limit + 1))),
        filters.limit,
        lambda site: site.code,
    )
    counts: dict[str, int] = {}
    if page.items:
        counts = {
            site_id: n
            for site_id, n in session.execute(
                select(Asset.site_id, func.count())
                .where(
                    Asset.org_id == principal.org_id,
                    Asset.site_id.in_([site.id for site in page.items]),
                    scopes.assets_within(asset_reach),
                )
                .group_by(Asset.site_id)
            )
        }
    return Page([(site, counts.get(site.id, 0)) for site in page.items], page.next_cursor)


def site_tree(session: Session, principal: Principal, site_id: str) -> list[Asset]:
    """Every asset of a site the principal may read, parents before children, siblings by
    name. The top of a subtree the principal holds is listed as a root."""
    reach = require_somewhere(principal, Permission.ASSET_READ)
    assets = list(
        session.scalars(
            select(Asset)
            .where(
                Asset.org_id == principal.org_id,
                Asset.site_id == site_id,
                scopes.assets_within(reach),
            )
            .order_by(Asset.name, Asset.id)
        )
    )
    shown = {asset.id for asset in assets}
    children: dict[str | None, list[Asset]] = {}
    for asset in assets:
        parent = asset.parent_id if asset.parent_id in shown else None
        children.setdefault(parent, []).append(asset)
    ordered: list[Asset] = []

    def walk(parent_id: str | None) -> None:
        for child in children.get(parent_id, []):
            ordered.append(child)
            walk(child.id)

    walk(None)
    return ordered


def count_assets(session: Session, principal: Principal) -> int:
    reach = require_somewhere(principal, Permission.ASSET_READ)
    query = select(func.count()).select_from(Asset)
    return (
        session.scalar(query.where(Asset.org_id == principal.org_id, scopes.assets_within(reach)))
        or 0
    )


def asset_names(session: Session, principal: Principal, asset_ids: Iterable[str]) -> dict[str, str]:
    """Id → name of the given assets the principal may read (for labelling links)."""
    reach = require_somewhere(principal, Permission.ASSET_READ)
    wanted = sorted(set(asset_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Asset.id, Asset.name).where(
            Asset.org_id == principal.org_id,
            Asset.id.in_(wanted[:1000]),
            scopes.assets_within(reach),
        )
    )
    return {row.id: row.name for row in rows}

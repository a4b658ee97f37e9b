"""Read-side queries: filtered, scoped to one organization, keyset-paginated."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists, func, literal_column, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute, Session

from outpost.identity.authz import authorize
from outpost.identity.principal import Principal
from outpost.identity.roles import Permission
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
    authorize(principal, Permission.ASSET_READ)
    org_id = principal.org_id
    query = select(Asset).where(Asset.org_id == org_id)
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
    """Sites in code order, each with its asset count: counted for this page's sites only,
    in one grouped query (no N+1, and no count over the whole organization)."""
    authorize(principal, Permission.SITE_READ)
    query = select(Site).where(Site.org_id == principal.org_id)
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
                )
                .group_by(Asset.site_id)
            )
        }
    return Page([(site, counts.get(site.id, 0)) for site in page.items], page.next_cursor)


def site_tree(session: Session, principal: Principal, site_id: str) -> list[Asset]:
    """Every asset of a site, parents before children, siblings by name."""
    authorize(principal, Permission.ASSET_READ)
    org_id = principal.org_id
    assets = list(
        session.scalars(
            select(Asset)
            .where(Asset.org_id == org_id, Asset.site_id == site_id)
            .order_by(Asset.name, Asset.id)
        )
    )
    children: dict[str | None, list[Asset]] = {}
    for asset in assets:
        children.setdefault(asset.parent_id, []).append(asset)
    ordered: list[Asset] = []

    def walk(parent_id: str | None) -> None:
        for child in children.get(parent_id, []):
            ordered.append(child)
            walk(child.id)

    walk(None)
    return ordered


def count_assets(session: Session, principal: Principal) -> int:
    authorize(principal, Permission.ASSET_READ)
    org_id = principal.org_id
    return (
        session.scalar(select(func.count()).select_from(Asset).where(Asset.org_id == org_id)) or 0
    )


def asset_names(session: Session, principal: Principal, asset_ids: Iterable[str]) -> dict[str, str]:
    """Id → name of the given assets that exist in the organization (for labelling links)."""
    authorize(principal, Permission.ASSET_READ)
    org_id = principal.org_id
    wanted = sorted(set(asset_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Asset.id, Asset.name).where(Asset.org_id == org_id, Asset.id.in_(wanted[:1000]))
    )
    return {row.id: row.name for row in rows}

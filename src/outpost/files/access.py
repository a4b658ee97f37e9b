"""Who may read or change which files: roles on scopes, widened by explicit shares.

Access follows the asset tree: a file belongs to the organization, a site or an
asset. ``files.read`` / ``files.write`` held on the owner's scope (the organization, the
site, or a subtree holding the asset) give read or write; an active share (not revoked,
not expired, for this user or their role) gives read or write on one file, or on a
folder and everything below it. Expiry is compared with the clock on every call;
nothing is cached. A file the principal may not read is answered as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.orm import Session

from outpost.clock import utcnow
from outpost.errors import Forbidden, NotFound
from outpost.files import names
from outpost.files.models import File, FileShare
from outpost.identity.authz import authorize, can, reach
from outpost.identity.principal import ORGANIZATION as ORGANIZATION_SCOPE
from outpost.identity.principal import Area, Principal, Scope
from outpost.identity.roles import Permission
from outpost.inventory import scopes as inventory_scopes
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset

ORGANIZATION = "organization"


@dataclass(frozen=True)
class Place:
    """An owner (organization, site or asset) and a folder in it."""

    owner_type: str
    owner_id: str
    folder: str


def resolve_owner(
    session: Session, principal: Principal, site_id: str | None, asset_id: str | None
) -> tuple[str, str]:
    """The owner named by ``site_id`` or ``asset_id`` (neither: the organization).

    Another organization's site or asset is a 404, like everywhere else.
    """
    if site_id and asset_id:
        raise NotFound("Name a site or an asset, not both.")
    if asset_id:
        return "asset", inventory.get_asset(session, principal, asset_id).id
    if site_id:
        return "site", inventory.get_site(session, principal, site_id).id
    return ORGANIZATION, principal.org_id


def _grantee(principal: Principal) -> ColumnElement[bool]:
    return or_(
        and_(FileShare.grantee_type == "user", FileShare.grantee_id == principal.user_id),
        and_(FileShare.grantee_type == "role", FileShare.grantee_id == principal.role),
    )


def _active(principal: Principal) -> ColumnElement[bool]:
    return and_(
        FileShare.org_id == principal.org_id,
        FileShare.revoked_at.is_(None),
        FileShare.expires_at > utcnow(),
        _grantee(principal),
    )


def _covers_folder(owner_type: str, owner_id: str, folder: str) -> ColumnElement[bool]:
    """A folder share on ``folder`` or one of its ancestors, for the same owner."""
    return and_(
        FileShare.file_id.is_(None),
        FileShare.owner_type == owner_type,
        FileShare.owner_id == owner_id,
        FileShare.folder.in_(names.ancestors(folder)),
    )


def _shares_apply(principal: Principal, *, write: bool) -> bool:
    """Shares widen a user's role, never a token's scope: a token narrowed to other
    permissions reaches no file through a share."""
    if principal.token_permissions is None:
        return True
    needed = Permission.FILES_WRITE if write else Permission.FILES_READ
    return needed in principal.token_permissions


def _shared(
    session: Session, principal: Principal, place: Place, file_id: str | None, *, write: bool
) -> bool:
    if not _shares_apply(principal, write=write):
        return False
    target = _covers_folder(place.owner_type, place.owner_id, place.folder)
    if file_id is not None:
        target = or_(FileShare.file_id == file_id, target)
    query = select(FileShare.id).where(_active(principal), target)
    if write:
        query = query.where(FileShare.access == "write")
    return session.scalar(query.limit(1)) is not None


def place_of(file: File) -> Place:
    return Place(file.owner_type, file.owner_id, file.folder)


def scope_of(session: Session, principal: Principal, place: Place) -> Scope:
    """Where the place's owner sits in the organization."""
    if place.owner_type == "asset":
        return inventory.scope_of(session, principal, asset_id=place.owner_id)
    if place.owner_type == "site":
        return inventory.scope_of(session, principal, site_id=place.owner_id)
    return ORGANIZATION_SCOPE


def require_read(session: Session, principal: Principal, file: File) -> None:
    if file.org_id != principal.org_id:
        raise NotFound("No such file.")
    place = place_of(file)
    if can(principal, Permission.FILES_READ, scope_of(session, principal, place)):
        return
    if not _shared(session, principal, place, file.id, write=False):
        raise NotFound("No such file.")


def require_write(
    session: Session, principal: Principal, place: Place, file: File | None = None
) -> None:
    """Write ``file`` (or create a file at ``place``): ``files.write`` there, or a write
    share."""
    if file is not None and file.org_id != principal.org_id:
        raise NotFound("No such file.")
    if can(principal, Permission.FILES_WRITE, scope_of(session, principal, place)):
        return
    if not _shared(session, principal, place, file.id if file else None, write=True):
        raise Forbidden(f"You do not hold {Permission.FILES_WRITE} here.")


def can_see(session: Session, principal: Principal, place: Place) -> bool:
    """``files.read`` on the place's owner: what is there is not hidden from them."""
    return can(principal, Permission.FILES_READ, scope_of(session, principal, place))


def require_share(session: Session, principal: Principal, place: Place) -> None:
    """Share files at ``place``: ``files.share`` on its owner's scope."""
    authorize(principal, Permission.FILES_SHARE, scope_of(session, principal, place))


def may_write(session: Session, principal: Principal, file: File) -> bool:
    try:
        require_write(session, principal, place_of(file), file)
    except Forbidden:
        return False
    return True


def _owner_in(area: Area) -> ColumnElement[bool]:
    """The file's owner is inside ``area``."""
    if area.whole:
        return true()
    owned_by_asset = and_(
        File.owner_type == "asset",
        File.owner_id.in_(select(Asset.id).where(inventory_scopes.assets_within_area(area))),
    )
    if area.asset_id is not None:
        return owned_by_asset
    return or_(and_(File.owner_type == "site", File.owner_id == area.site_id), owned_by_asset)


def by_role(principal: Principal) -> ColumnElement[bool]:
    """The files ``files.read`` reaches."""
    found = reach(principal, Permission.FILES_READ)
    if found.everywhere:
        return true()
    if found.nowhere:
        return false()
    return and_(or_(*(_owner_in(area) for area in found.areas)), _owner_in(found.within))


def readable(principal: Principal) -> ColumnElement[bool]:
    """A filter on ``File`` for the files ``principal`` may read, for lists (in SQL)."""
    mine = File.org_id == principal.org_id
    if not principal.org_id or not _shares_apply(principal, write=False):
        return and_(mine, by_role(principal))
    by_file = FileShare.file_id == File.id
    by_folder = and_(
        FileShare.file_id.is_(None),
        FileShare.owner_type == File.owner_type,
        FileShare.owner_id == File.owner_id,
        or_(
            FileShare.folder == "/",
            File.folder == FileShare.folder,
            func.substr(File.folder, 1, func.length(FileShare.folder) + 1)
            == FileShare.folder + "/",
        ),
    )
    shared = exists(select(FileShare.id).where(_active(principal), or_(by_file, by_folder)))
    return and_(mine, or_(by_role(principal), shared))

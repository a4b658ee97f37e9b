"""Who may read or change which files: organization roles, widened by explicit shares.

Access follows the asset tree: a file belongs to the organization, a site or an
asset, and the owner must be one the principal can see. Roles give ``files.read`` /
``files.write`` on every owner they reach; an active share (not revoked, not expired,
for this user or their role) gives read or write on one file, or on a folder and
everything below it. Expiry is compared with the clock on every call; nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session

from outpost.clock import utcnow
from outpost.errors import Forbidden, NotFound
from outpost.files import names
from outpost.files.models import File, FileShare
from outpost.identity.authz import can
from outpost.identity.principal import Principal
from outpost.identity.roles import Permission
from outpost.inventory import service as inventory

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


def require_read(session: Session, principal: Principal, file: File) -> None:
    if file.org_id != principal.org_id:
        raise NotFound("No such file.")
    if can(principal, Permission.FILES_READ):
        return
    if not _shared(session, principal, place_of(file), file.id, write=False):
        raise Forbidden("You may not read this file.")


def require_write(
    session: Session, principal: Principal, place: Place, file: File | None = None
) -> None:
    """Write ``file`` (or create a file at ``place``): ``files.write``, or a write share."""
    if file is not None and file.org_id != principal.org_id:
        raise NotFound("No such file.")
    if can(principal, Permission.FILES_WRITE):
        return
    if not _shared(session, principal, place, file.id if file else None, write=True):
        raise Forbidden(f"Your role ({principal.role}) does not allow {Permission.FILES_WRITE}.")


def may_write(session: Session, principal: Principal, file: File) -> bool:
    try:
        require_write(session, principal, place_of(file), file)
    except Forbidden:
        return False
    return True


def readable(principal: Principal) -> ColumnElement[bool]:
    """A filter on ``File`` for the files ``principal`` may read, for lists (in SQL)."""
    if can(principal, Permission.FILES_READ):
        return File.org_id == principal.org_id
    if not principal.org_id or not _shares_apply(principal, write=False):
        return false()
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
    return and_(
        File.org_id == principal.org_id,
        exists(select(FileShare.id).where(_active(principal), or_(by_file, by_folder))),
    )

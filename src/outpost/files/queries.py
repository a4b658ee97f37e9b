"""Read-side queries over files: filtered in SQL to what the caller may read, keyset-paged."""

from __future__ import annotations

import json

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from outpost.errors import BadRequest
from outpost.files import access, names
from outpost.files.models import File
from outpost.files.schemas import FileFilter, FolderQuery
from outpost.files.service import checked_place
from outpost.identity.principal import Principal
from outpost.inventory.queries import has_tag
from outpost.pagination import Page, decode_cursor, page_of
from outpost.validation import Violation


def _name_cursor(file: File) -> str:
    return json.dumps([file.name, file.id])


def _after(cursor: str | None) -> tuple[str, str] | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    try:
        name, file_id = json.loads(value)
        return str(name), str(file_id)
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            "The cursor is not valid.",
            [Violation("cursor.invalid", "Use the next_cursor of a previous page.", "cursor")],
        ) from exc


def _folder(given: str) -> str:
    folder, problems = names.normalize_folder(given)
    if problems:
        raise BadRequest("The folder is not valid.", problems)
    return folder


def list_files(session: Session, principal: Principal, filters: FileFilter) -> Page[File]:
    """Files in name order. Naming a site or asset lists its files; ``folder`` one folder."""
    query = select(File).where(access.readable(principal))
    if filters.site_id or filters.asset_id:
        place = checked_place(session, principal, filters.model_copy(update={"folder": "/"}))
        query = query.where(File.owner_type == place.owner_type, File.owner_id == place.owner_id)
    elif filters.owner:
        query = query.where(File.owner_type == filters.owner)
    if filters.folder is not None:
        query = query.where(File.folder == _folder(filters.folder))
    deleted = File.deleted_at.is_not(None) if filters.deleted else File.deleted_at.is_(None)
    query = query.where(deleted)
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(File.name.ilike(f"%{escaped}%", escape="\\"))
    if filters.tag:
        query = query.where(has_tag(session, File.tags, filters.tag))
    if filters.content_type:
        query = query.where(File.content_type == filters.content_type)
    after = _after(filters.cursor)
    if after is not None:
        name, file_id = after
        query = query.where(or_(File.name > name, and_(File.name == name, File.id > file_id)))
    rows = list(session.scalars(query.order_by(File.name, File.id).limit(filters.limit + 1)))
    return page_of(rows, filters.limit, _name_cursor)


def list_subfolders(session: Session, principal: Principal, query: FolderQuery) -> list[str]:
    """The folders directly below ``query.folder`` that hold live files (at any depth)."""
    _folder(query.folder)  # a bad folder in a query is a 400, as in list_files
    place = checked_place(session, principal, query)
    prefix = place.folder.rstrip("/") + "/"
    folders = session.scalars(
        select(File.folder)
        .where(
            access.readable(principal),
            File.owner_type == place.owner_type,
            File.owner_id == place.owner_id,
            File.deleted_at.is_(None),
            File.folder.startswith(prefix, autoescape=True),
        )
        .distinct()
    )
    children = {folder[len(prefix) :].split("/")[0] for folder in folders}
    return sorted(prefix + child for child in children if child)

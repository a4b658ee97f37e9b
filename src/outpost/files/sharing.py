"""Explicit shares with members, and expiring download links for people outside.

A share gives one user, or everyone holding a role, read or write access to a file or
a folder until it expires. A link is a random token (shown once, stored as its SHA-256)
that lets anyone holding it download one file until it expires, is revoked or has been
used ``max_downloads`` times, optionally behind a password. Creating either needs
``files.share`` and write access to what is shared.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.db import Database
from outpost.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests
from outpost.files import access, names, service
from outpost.files.access import Place
from outpost.files.models import File, FileLink, FileShare, FileVersion
from outpost.files.schemas import FolderShareCreate, LinkCreate, ShareCreate
from outpost.identity import passwords
from outpost.identity.custom_roles import role_exists
from outpost.identity.principal import Actor, Principal, RequestMeta
from outpost.identity.service import is_member
from outpost.validation import Violation

SHARE_MAX = timedelta(days=366)
LINK_TOKEN_PREFIX = "opl"
PASSWORD_ATTEMPTS = 5
PASSWORD_LOCKOUT = timedelta(minutes=15)


# --- shares -----------------------------------------------------------------------------


def _check_share(session: Session, principal: Principal, data: ShareCreate) -> None:
    problems: list[Violation] = []
    if data.grantee_type == "user" and not is_member(session, principal.org_id, data.grantee_id):
        problems.append(Violation("share.grantee_unknown", "No such member here.", "grantee_id"))
    if data.grantee_type == "role" and not role_exists(session, principal.org_id, data.grantee_id):
        problems.append(
            Violation("share.role_unknown", f"Unknown role {data.grantee_id!r}.", "grantee_id")
        )
    now = utcnow()
    if data.expires_at.tzinfo is None:
        problems.append(
            Violation("share.expiry_naive", "Give the expiry in UTC (ending in Z).", "expires_at")
        )
    elif not now < data.expires_at <= now + SHARE_MAX:
        problems.append(
            Violation(
                "share.expiry_out_of_range",
                f"A share must expire in the future and within {SHARE_MAX.days} days.",
                "expires_at",
            )
        )
    if problems:
        raise BadRequest("The share is not valid.", problems)


def _new_share(
    session: Session, actor: Actor, data: ShareCreate, place: Place, file_id: str | None
) -> FileShare:
    principal = actor.principal
    access.require_share(session, principal, place)
    _check_share(session, principal, data)
    share = FileShare(
        id=ids.new_id("shr"),
        org_id=actor.org_id,
        file_id=file_id,
        owner_type=place.owner_type,
        owner_id=place.owner_id,
        folder=None if file_id else place.folder,
        grantee_type=data.grantee_type,
        grantee_id=data.grantee_id,
        access=data.access,
        expires_at=data.expires_at,
        created_at=utcnow(),
        created_by=principal.label,
    )
    with audit.tracked(session, actor, Action.SHARE_CREATED) as tracker:
        session.add(share)
        tracker.obj = share
    return share


def share_file(session: Session, actor: Actor, file_id: str, data: ShareCreate) -> FileShare:
    file = service.get_file(session, actor.principal, file_id)
    place = access.place_of(file)
    access.require_write(session, actor.principal, place, file)
    return _new_share(session, actor, data, place, file.id)


def share_folder(session: Session, actor: Actor, data: FolderShareCreate) -> FileShare:
    place = service.checked_place(session, actor.principal, data)
    access.require_write(session, actor.principal, place)
    return _new_share(session, actor, data, place, None)


def list_shares(session: Session, principal: Principal, file_id: str) -> list[FileShare]:
    """Every share that reaches a file: its own, and those on its folder or above."""
    file = service.get_file(session, principal, file_id)
    return list(
        session.scalars(
            select(FileShare)
            .where(
                FileShare.org_id == principal.org_id,
                or_(
                    FileShare.file_id == file.id,
                    (FileShare.file_id.is_(None))
                    & (FileShare.owner_type == file.owner_type)
                    & (FileShare.owner_id == file.owner_id)
                    & FileShare.folder.in_(names.ancestors(file.folder)),
                ),
            )
            .order_by(FileShare.created_at.desc(), FileShare.id)
        )
    )


Revocable = TypeVar("Revocable", FileShare, FileLink)


def _revoke(
    session: Session, actor: Actor, model: type[Revocable], object_id: str, action: Action
) -> Revocable:
    """End a share or a link now (audited); another tenant's is a 404."""
    what = model.audit_type.removeprefix("file_")
    found = session.get(model, object_id)
    if found is None or found.org_id != actor.org_id:
        raise NotFound(f"No such {what}.")
    place = _place_of(session, found)
    if not access.can_see(session, actor.principal, place):
        raise NotFound(f"No such {what}.")
    access.require_share(session, actor.principal, place)
    if found.revoked_at is not None:
        raise Conflict(f"The {what} is already revoked.")
    with audit.tracked(session, actor, action, found):
        found.revoked_at = utcnow()
    return found


def _place_of(session: Session, found: FileShare | FileLink) -> Place:
    if isinstance(found, FileShare):
        return Place(found.owner_type, found.owner_id, found.folder or "/")
    file = session.get(File, found.file_id)
    if file is None:
        raise NotFound("No such link.")
    return access.place_of(file)


def revoke_share(session: Session, actor: Actor, share_id: str) -> FileShare:
    return _revoke(session, actor, FileShare, share_id, Action.SHARE_REVOKED)


# --- links ------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedLink:
    link: FileLink
    token: str


def create_link(
    session: Session, actor: Actor, data: LinkCreate, *, max_lifetime: timedelta
) -> IssuedLink:
    principal = actor.principal
    file = service.get_file(session, principal, data.file_id)  # another tenant's: 404 first
    access.require_share(session, principal, access.place_of(file))
    access.require_write(session, principal, access.place_of(file), file)
    if file.deleted_at is not None:
        raise Conflict(f"{file.name} is deleted; restore it before sharing it.")
    lifetime = timedelta(hours=data.expires_in_hours)
    if lifetime > max_lifetime:
        hours = max_lifetime.total_seconds() / 3600
        raise BadRequest(
            "The link lives too long.",
            [
                Violation(
                    "link.expiry_too_long",
                    f"A link can live at most {hours:g} hours.",
                    "expires_in_hours",
                )
            ],
        )
    visible = f"{LINK_TOKEN_PREFIX}_{secrets.token_hex(4)}"
    token = f"{visible}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    link = FileLink(
        id=ids.new_id("lnk"),
        org_id=actor.org_id,
        file_id=file.id,
        token_hash=_digest(token),
        prefix=visible,
        password_hash=passwords.hash_password(data.password) if data.password else None,
        max_downloads=data.max_downloads,
        download_count=0,
        failed_attempts=0,
        expires_at=now + lifetime,
        created_at=now,
        created_by=principal.label,
    )
    with audit.tracked(session, actor, Action.LINK_CREATED) as tracker:
        session.add(link)
        tracker.obj = link
    return IssuedLink(link, token)


def list_links(session: Session, principal: Principal, file_id: str) -> list[FileLink]:
    file = service.get_file(session, principal, file_id)
    return list(
        session.scalars(
            select(FileLink)
            .where(FileLink.file_id == file.id)
            .order_by(FileLink.created_at.desc(), FileLink.id)
        )
    )


def revoke_link(session: Session, actor: Actor, link_id: str) -> FileLink:
    return _revoke(session, actor, FileLink, link_id, Action.LINK_REVOKED)


@dataclass(frozen=True)
class LinkView:
    """What the public link page may show before a download."""

    link: FileLink
    file: File
    version: FileVersion


def _usable_link(session: Session, token: str, now: datetime) -> LinkView:
    """The link and what it serves; any reason it cannot be used is the same 404."""
    link = session.scalar(select(FileLink).where(FileLink.token_hash == _digest(token)))
    gone = NotFound("This link does not exist, has expired or was revoked.")
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        raise gone
    if link.max_downloads is not None and link.download_count >= link.max_downloads:
        raise gone
    file = session.get(File, link.file_id)
    if file is None or file.deleted_at is not None:
        raise gone
    return LinkView(link, file, service.live_version(session, file, None))


def inspect_link(session: Session, token: str) -> LinkView:
    return _usable_link(session, token, utcnow())


def _link_actor(link: FileLink, meta: RequestMeta) -> Actor:
    who = Principal(
        org_id=link.org_id, user_id=link.id, role="", label=f"link {link.prefix}", kind="link"
    )
    return Actor(who, meta)


def use_link(db: Database, token: str, password: str | None, meta: RequestMeta) -> LinkView:
    """Count one download through the link and audit it, or refuse.

    A wrong password is recorded (in its own transaction, so the refusal cannot roll it
    back); after ``PASSWORD_ATTEMPTS`` failures the link answers 429 for a while.
    """
    now = utcnow()
    with db.unit_of_work(write=True) as session:
        view = _usable_link(session, token, now)
        link = view.link
        locked_until = (link.last_failure_at or now) + PASSWORD_LOCKOUT
        if link.failed_attempts >= PASSWORD_ATTEMPTS and now < locked_until:
            raise TooManyRequests(
                "Too many wrong passwords for this link; try again later.",
                int((locked_until - now).total_seconds()) + 1,
            )
        wrong = link.password_hash is not None and not passwords.verify_password(
            link.password_hash, password or ""
        )
        if wrong:
            link.failed_attempts += 1
            link.last_failure_at = now
    if wrong:
        raise Forbidden("The password for this link is not right.")
    with db.unit_of_work(write=True) as session:
        counted = session.execute(
            update(FileLink)
            .where(
                FileLink.id == link.id,
                or_(
                    FileLink.max_downloads.is_(None),
                    FileLink.download_count < FileLink.max_downloads,
                ),
            )
            .values(download_count=FileLink.download_count + 1, failed_attempts=0)
        )
        if counted.rowcount != 1:  # type: ignore[attr-defined]
            raise NotFound("This link does not exist, has expired or was revoked.")
        audit.record(
            session,
            _link_actor(link, meta),
            [
                audit.Change(
                    Action.LINK_USED,
                    view.file.audit_type,
                    view.file.id,
                    None,
                    {"link_id": link.id, "version": view.version.number},
                )
            ],
        )
    return view

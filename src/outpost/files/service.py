"""File operations: upload (a new file or a new version), download, metadata, delete,
restore and purge.

Uploads and downloads move bytes outside any database transaction, so a large file
never holds a lock: an upload checks access, streams the body into the blob store
while hashing and metering it, then records the file, its version, the quota and the
audit event in one short transaction (and removes the blob if that fails). That is why
these two take the ``Database`` rather than a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.db import Database
from outpost.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RuleViolation,
    UnsupportedMediaType,
    require_revision,
)
from outpost.files import access, names
from outpost.files.access import Place
from outpost.files.models import File, FileLink, FileShare, FileUsage, FileVersion
from outpost.files.schemas import FilePlace, FileUpdate, FileUpload
from outpost.files.sniff import sniff
from outpost.files.storage import BlobStore, Readable
from outpost.files.streams import UploadReader, verified
from outpost.identity.principal import Actor, Principal
from outpost.identity.service import system_actor
from outpost.settings import Settings
from outpost.validation import Violation


@dataclass(frozen=True)
class FileLimits:
    max_bytes: int
    quota_bytes: int
    types: frozenset[str]
    retention: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLimits:
        return cls(
            settings.file_max_bytes,
            settings.file_quota_bytes,
            settings.file_types,
            timedelta(days=settings.file_retention_days),
        )


def _mib(size: int) -> str:
    return f"{size / 1024**2:,.1f} MiB"


# --- places and names -------------------------------------------------------------------


def checked_place(session: Session, principal: Principal, given: FilePlace) -> Place:
    """The owner and normalized folder named by ``given``; a bad folder is a 422."""
    folder, problems = names.normalize_folder(given.folder)
    if problems:
        raise RuleViolation(problems)
    owner_type, owner_id = access.resolve_owner(session, principal, given.site_id, given.asset_id)
    return Place(owner_type, owner_id, folder)


def _checked_name(name: str) -> str:
    normalized, problems = names.normalize_name(name)
    if problems:
        raise RuleViolation(problems)
    return normalized


def _live_file(
    session: Session, org_id: str, place: Place, name: str, *, lock: bool
) -> File | None:
    query = select(File).where(
        File.org_id == org_id,
        File.owner_type == place.owner_type,
        File.owner_id == place.owner_id,
        File.folder == place.folder,
        File.name == name,
        File.deleted_at.is_(None),
    )
    return session.scalar(query.with_for_update() if lock else query)


def _name_taken(file_id: str, place: Place, name: str) -> Conflict:
    message = f"{place.folder} already holds a file named {name!r}."
    return Conflict(message, [Violation("file.name_taken", message, "name", file_id)])


# --- usage ------------------------------------------------------------------------------


def used_bytes(session: Session, org_id: str) -> int:
    found = session.scalar(select(FileUsage.used_bytes).where(FileUsage.org_id == org_id))
    return found or 0


def _locked_usage(session: Session, org_id: str) -> FileUsage:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(FileUsage).values(org_id=org_id, used_bytes=0).on_conflict_do_nothing()
    )
    return session.scalars(
        select(FileUsage).where(FileUsage.org_id == org_id).with_for_update()
    ).one()


def _too_large(size: int | None, limits: FileLimits, room: int) -> PayloadTooLarge | None:
    """The error for a body of ``size`` bytes (None: unknown yet), or None if it fits."""
    if size is not None and size > limits.max_bytes:
        return PayloadTooLarge(f"The file is larger than the {_mib(limits.max_bytes)} allowed.")
    if size is not None and size > room:
        return QuotaExceeded(
            f"The organization's storage quota ({_mib(limits.quota_bytes)}) has "
            f"{_mib(max(room, 0))} left; this file needs {_mib(size)}."
        )
    return None


# --- upload -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Uploaded:
    file: File
    version: FileVersion
    created: bool


def upload_file(
    db: Database,
    blobs: BlobStore,
    actor: Actor,
    upload: FileUpload,
    body: Readable,
    *,
    declared_size: int | None,
    limits: FileLimits,
) -> Uploaded:
    """Store ``body`` as the file ``upload.name`` in its place: a new file, or a new version.

    Refused before the body is read: no write access (403), a bad name (422), a declared
    size over the file limit or the quota (413). Refused while streaming: a disallowed
    content type (415, from the first bytes) or more bytes than allowed (413).
    """
    principal = actor.principal
    name = _checked_name(upload.name)
    with db.unit_of_work(write=False) as session:
        place = checked_place(session, principal, upload)
        existing = _live_file(session, actor.org_id, place, name, lock=False)
        access.require_write(session, principal, place, existing)
        room = limits.quota_bytes - used_bytes(session, actor.org_id)
    refusal = _too_large(declared_size, limits, room)
    if refusal is not None:
        raise refusal
    limit = min(limits.max_bytes, room)
    reader = UploadReader(
        body, limit=limit, too_large=_too_large(limit + 1, limits, room) or PayloadTooLarge()
    )
    content_type = sniff(reader.head, name)
    if content_type not in limits.types:
        raise UnsupportedMediaType(
            f"This file's content is {content_type}, which is not accepted here. "
            f"Accepted: {', '.join(sorted(limits.types))}."
        )
    key = f"{actor.org_id}/{ids.new_id('blob')}"
    blobs.put(key, reader, content_type=content_type)
    stored = StoredUpload(place, name, upload, key, reader.size, reader.sha256, content_type)
    try:
        return _record_with_retry(db, actor, stored, limits)
    except BaseException:
        blobs.delete(key)
        raise


@dataclass(frozen=True)
class StoredUpload:
    """An upload whose bytes are in the store, waiting to be recorded."""

    place: Place
    name: str
    fields: FileUpload
    key: str
    size: int
    sha256: str
    content_type: str


def _record_with_retry(
    db: Database, actor: Actor, stored: StoredUpload, limits: FileLimits
) -> Uploaded:
    """Two uploads racing to create the same name: the loser becomes a new version."""
    for attempt in (1, 2):
        try:
            with db.unit_of_work(write=True) as session:
                return _record_upload(session, actor, stored, limits)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record_upload(
    session: Session, actor: Actor, stored: StoredUpload, limits: FileLimits
) -> Uploaded:
    place, name, upload = stored.place, stored.name, stored.fields
    usage = _locked_usage(session, actor.org_id)
    refusal = _too_large(stored.size, limits, limits.quota_bytes - usage.used_bytes)
    if refusal is not None:
        raise refusal
    existing = _live_file(session, actor.org_id, place, name, lock=True)
    access.require_write(session, actor.principal, place, existing)
    now = utcnow()
    file = existing or File(
        id=ids.new_id("fil"),
        org_id=actor.org_id,
        owner_type=place.owner_type,
        owner_id=place.owner_id,
        folder=place.folder,
        name=name,
        description=upload.description,
        tags=list(upload.tags),
        version_count=0,
        revision=0,
        created_at=now,
    )
    action = Action.FILE_VERSION_ADDED if existing else Action.FILE_UPLOADED
    with audit.tracked(session, actor, action, existing) as tracker:
        file.version_count += 1
        file.revision += 1
        file.size = stored.size
        file.sha256 = stored.sha256
        file.content_type = stored.content_type
        file.updated_at = now
        if existing is not None:
            file.description = upload.description or file.description
            file.tags = list(upload.tags) or file.tags
        else:
            session.add(file)
        session.flush()
        version = FileVersion(
            id=ids.new_id("ver"),
            org_id=actor.org_id,
            file_id=file.id,
            number=file.version_count,
            blob_key=stored.key,
            size=stored.size,
            sha256=stored.sha256,
            content_type=stored.content_type,
            created_at=now,
            created_by=actor.principal.label,
        )
        session.add(version)
        tracker.obj = file
    usage.used_bytes += stored.size
    return Uploaded(file, version, existing is None)


# --- reading ----------------------------------------------------------------------------


def get_file(session: Session, principal: Principal, file_id: str) -> File:
    """A file the principal may read, live or deleted (its metadata stays readable)."""
    file = session.get(File, file_id)
    if file is None:
        raise NotFound("No such file.")
    access.require_read(session, principal, file)
    return file


def list_versions(session: Session, principal: Principal, file_id: str) -> list[FileVersion]:
    file = get_file(session, principal, file_id)
    return list(
        session.scalars(
            select(FileVersion)
            .where(FileVersion.file_id == file.id)
            .order_by(FileVersion.number.desc())
        )
    )


def may_write(session: Session, principal: Principal, file: File) -> bool:
    return access.may_write(session, principal, file)


@dataclass(frozen=True)
class Download:
    """A version about to be served: its metadata, and its bytes on demand."""

    file: File
    version: FileVersion
    blobs: BlobStore

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, stop)``; a whole-file read is checked against its SHA-256."""
        key = self.version.blob_key
        raw = self.blobs.read(key, start=start, stop=stop)
        whole = start == 0 and (stop is None or stop >= self.version.size)
        return verified(raw, self.version.sha256, key) if whole else raw


def _version(session: Session, file: File, number: int | None) -> FileVersion:
    found = session.scalar(
        select(FileVersion).where(
            FileVersion.file_id == file.id,
            FileVersion.number == (number or file.version_count),
        )
    )
    if found is None:
        raise NotFound(f"{file.name} has no version {number}.")
    return found


def live_version(session: Session, file: File, number: int | None) -> FileVersion:
    """Version ``number`` (default: the latest) of a file that is not deleted."""
    if file.deleted_at is not None:
        raise NotFound(f"{file.name} was deleted; restore it to download it.")
    return _version(session, file, number)


def open_download(
    db: Database, blobs: BlobStore, actor: Actor, file_id: str, number: int | None
) -> Download:
    """Authorize and audit a download; the bytes are read after the transaction ends."""
    with db.unit_of_work(write=True) as session:
        file = get_file(session, actor.principal, file_id)
        version = live_version(session, file, number)
        audit.record(
            session,
            actor,
            [
                audit.Change(
                    Action.FILE_DOWNLOADED,
                    file.audit_type,
                    file.id,
                    None,
                    {"version": version.number, "size": version.size, "sha256": version.sha256},
                )
            ],
        )
        return Download(file, version, blobs)


# --- metadata, delete, restore ----------------------------------------------------------


def _locked_file(session: Session, principal: Principal, file_id: str) -> File:
    file = session.scalar(select(File).where(File.id == file_id).with_for_update())
    if file is None or file.org_id != principal.org_id:
        raise NotFound("No such file.")
    return file


def _writable(session: Session, actor: Actor, file_id: str, if_revision: int) -> File:
    file = _locked_file(session, actor.principal, file_id)
    access.require_read(session, actor.principal, file)
    access.require_write(session, actor.principal, access.place_of(file), file)
    require_revision(file.revision, if_revision, file.audit_snapshot(), f"File {file.name}")
    return file


def update_file(
    session: Session, actor: Actor, file_id: str, changes: FileUpdate, *, if_revision: int
) -> File:
    """Rename, move to another folder of the same owner, or change description and tags."""
    file = _writable(session, actor, file_id, if_revision)
    if file.deleted_at is not None:
        raise Conflict(f"{file.name} is deleted; restore it before changing it.")
    name = file.name if changes.name is None else _checked_name(changes.name)
    folder = file.folder
    if changes.folder is not None:
        folder, problems = names.normalize_folder(changes.folder)
        if problems:
            raise RuleViolation(problems)
    place = Place(file.owner_type, file.owner_id, folder)
    if folder != file.folder:
        access.require_write(session, actor.principal, place)
    if (name, folder) != (file.name, file.folder):
        other = _live_file(session, actor.org_id, place, name, lock=False)
        if other is not None and other.id != file.id:
            raise _name_taken(other.id, place, name)
    with audit.tracked(session, actor, Action.FILE_UPDATED, file):
        file.name = name
        file.folder = folder
        if changes.description is not None:
            file.description = changes.description
        if changes.tags is not None:
            file.tags = list(changes.tags)
        file.revision += 1
        file.updated_at = utcnow()
    return file


def delete_file(session: Session, actor: Actor, file_id: str, *, if_revision: int) -> File:
    """Move a file to the trash; it is purged after the retention period."""
    file = _writable(session, actor, file_id, if_revision)
    if file.deleted_at is not None:
        raise Conflict(f"{file.name} is already deleted.")
    with audit.tracked(session, actor, Action.FILE_DELETED, file):
        file.deleted_at = file.updated_at = utcnow()
        file.revision += 1
    return file


def restore_file(session: Session, actor: Actor, file_id: str, *, if_revision: int) -> File:
    file = _writable(session, actor, file_id, if_revision)
    if file.deleted_at is None:
        raise Conflict(f"{file.name} is not deleted.")
    place = access.place_of(file)
    other = _live_file(session, actor.org_id, place, file.name, lock=False)
    if other is not None:
        raise _name_taken(other.id, place, file.name)
    with audit.tracked(session, actor, Action.FILE_RESTORED, file):
        file.deleted_at = None
        file.updated_at = utcnow()
        file.revision += 1
    return file


# --- purge ------------------------------------------------------------------------------


def purge_deleted(
    db: Database, blobs: BlobStore, *, retention: timedelta, now: datetime | None = None
) -> int:
    """Remove files deleted longer than ``retention`` ago, their versions and blobs.

    Rows go first, in one transaction per batch with their audit events; blobs are
    removed after the commit, so a crash can leave an unreferenced blob, never a
    version whose content is gone. Rows another worker holds are skipped, so several
    workers may run this at once. Returns the number of files purged.
    """
    cutoff = (now or utcnow()) - retention
    purged = 0
    while True:
        with db.unit_of_work(write=True) as session:
            batch = list(
                session.scalars(
                    select(File)
                    .where(File.deleted_at.is_not(None), File.deleted_at < cutoff)
                    .order_by(File.org_id, File.id)
                    .limit(200)
                    .with_for_update(skip_locked=True)
                )
            )
            if not batch:
                return purged
            keys = _purge_rows(session, batch)
        for key in keys:
            blobs.delete(key)
        purged += len(batch)


def _purge_rows(session: Session, files: list[File]) -> list[str]:
    file_ids = [f.id for f in files]
    versions = list(session.scalars(select(FileVersion).where(FileVersion.file_id.in_(file_ids))))
    freed: dict[str, int] = {}
    for version in versions:
        freed[version.org_id] = freed.get(version.org_id, 0) + version.size
    for org_id, size in freed.items():
        _locked_usage(session, org_id).used_bytes -= size
    for model in (FileVersion, FileShare, FileLink):
        session.execute(delete(model).where(model.file_id.in_(file_ids)))
    by_org: dict[str, list[audit.Change]] = {}
    for file in files:
        by_org.setdefault(file.org_id, []).append(
            audit.Change(Action.FILE_PURGED, file.audit_type, file.id, file.audit_snapshot(), None)
        )
    session.execute(delete(File).where(File.id.in_(file_ids)))
    for org_id, changes in by_org.items():
        audit.record(session, system_actor(org_id, "retention"), changes)
    return [v.blob_key for v in versions]


def open_signed(session: Session, blobs: BlobStore, version_id: str) -> Download:
    """A version named by a signed URL: the signature was issued after the checks."""
    version = session.get(FileVersion, version_id)
    file = None if version is None else session.get(File, version.file_id)
    if version is None or file is None or file.deleted_at is not None:
        raise NotFound("This download link has expired or is not valid.")
    return Download(file, version, blobs)


ORPHAN_GRACE = timedelta(hours=1)
SWEEP_BATCH = 500


def sweep_orphans(
    db: Database, blobs: BlobStore, *, grace: timedelta = ORPHAN_GRACE, now: datetime | None = None
) -> int:
    """Delete stored blobs no version names, written more than ``grace`` ago.

    They are what a crash between storing an upload and committing its row leaves, or a
    purge whose blob deletion failed. The grace period covers uploads being recorded
    right now. Returns the number of blobs deleted.
    """
    swept = 0
    keys = blobs.stored_before((now or utcnow()) - grace)
    while batch := list(islice(keys, SWEEP_BATCH)):
        with db.unit_of_work(write=False) as session:
            known = set(
                session.scalars(select(FileVersion.blob_key).where(FileVersion.blob_key.in_(batch)))
            )
        for key in batch:
            if key not in known:
                blobs.delete(key)
                swept += 1
    return swept

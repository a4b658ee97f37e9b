"""File pole tables: files, their versions, shares, expiring links and per-organization usage.

A file belongs to an owner (the organization, a site or an asset) and sits in a folder.
Its contents are versions; each version names one blob in the blob store. A live name
is unique per owner and folder (a partial unique index: deleted files keep theirs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from outpost.clock import isoformat
from outpost.db import Base, JSONDoc, UTCDateTime

LIVE = text("deleted_at IS NULL")


class File(Base):
    __tablename__ = "files"
    __table_args__ = (
        Index(
            "uq_files_live_name",
            "org_id",
            "owner_type",
            "owner_id",
            "folder",
            "name",
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index("ix_files_org_deleted", "org_id", "deleted_at"),
        CheckConstraint("revision >= 1", name="ck_files_revision_positive"),
        CheckConstraint(
            "owner_type IN ('organization', 'site', 'asset')", name="ck_files_owner_type"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str] = mapped_column(String(40))
    folder: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(2000), default="")
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    # The latest version's type, size and hash, copied here so that lists, filters and
    # the browser need no join; only service._record_upload writes them, with the version.
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    version_count: Mapped[int] = mapped_column(default=1)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audit_type = "file"

    def audit_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner_type": self.owner_type,
            "owner_id": self.owner_id,
            "folder": self.folder,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "version_count": self.version_count,
            "revision": self.revision,
            "deleted_at": None if self.deleted_at is None else isoformat(self.deleted_at),
        }


class FileVersion(Base):
    __tablename__ = "file_versions"
    __table_args__ = (
        UniqueConstraint("file_id", "number", name="uq_file_versions_number"),
        Index("ix_file_versions_org", "org_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    blob_key: Mapped[str] = mapped_column(String(140), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(320))


class FileUsage(Base):
    """Bytes stored per organization (every version, deleted files until purged).

    The row is locked while a write changes it, so concurrent uploads cannot
    overrun the quota together.
    """

    __tablename__ = "file_usage"
    __table_args__ = (CheckConstraint("used_bytes >= 0", name="ck_file_usage_positive"),)

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class FileShare(Base):
    """Read or write access to one file, or to a folder and everything under it,
    for one user or everyone holding a role, until ``expires_at``."""

    __tablename__ = "file_shares"
    __table_args__ = (
        Index("ix_file_shares_org_grantee", "org_id", "grantee_type", "grantee_id"),
        Index("ix_file_shares_file", "file_id"),
        CheckConstraint("access IN ('read', 'write')", name="ck_file_shares_access"),
        CheckConstraint("grantee_type IN ('user', 'role')", name="ck_file_shares_grantee"),
        CheckConstraint(
            "(file_id IS NOT NULL) <> (folder IS NOT NULL)", name="ck_file_shares_one_target"
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str] = mapped_column(String(40))
    folder: Mapped[str | None] = mapped_column(String(1024))
    grantee_type: Mapped[str] = mapped_column(String(8))
    grantee_id: Mapped[str] = mapped_column(String(40))
    access: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(320))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audit_type = "file_share"

    def audit_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file_id": self.file_id,
            "owner_type": self.owner_type,
            "owner_id": self.owner_id,
            "folder": self.folder,
            "grantee_type": self.grantee_type,
            "grantee_id": self.grantee_id,
            "access": self.access,
            "expires_at": isoformat(self.expires_at),
            "revoked_at": None if self.revoked_at is None else isoformat(self.revoked_at),
        }


class FileLink(Base):
    """An expiring download link for someone outside the platform.

    Only the SHA-256 of its token is stored; its optional password is an argon2id hash.
    """

    __tablename__ = "file_links"
    __table_args__ = (
        Index("ix_file_links_file", "file_id"),
        CheckConstraint("download_count >= 0", name="ck_file_links_count_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    max_downloads: Mapped[int | None] = mapped_column()
    download_count: Mapped[int] = mapped_column(default=0)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(320))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audit_type = "file_link"

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def audit_snapshot(self) -> dict[str, Any]:
        """Never the token, its hash or the password hash."""
        return {
            "id": self.id,
            "file_id": self.file_id,
            "prefix": self.prefix,
            "has_password": self.has_password,
            "max_downloads": self.max_downloads,
            "download_count": self.download_count,
            "expires_at": isoformat(self.expires_at),
            "revoked_at": None if self.revoked_at is None else isoformat(self.revoked_at),
        }

"""Inventory tables: sites and assets.

Named constraints are the last line of defence behind the rules: codes are unique
per organization, serials are unique per organization, and a parent is a real row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from outpost.db import Base, JSONDoc, UTCDateTime


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (
        UniqueConstraint("org_id", "code", name="uq_sites_org_code"),
        CheckConstraint("revision >= 1", name="ck_sites_revision_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    grid_connection_kw: Mapped[float | None] = mapped_column(Float)
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    audit_type = "site"

    def audit_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "code": self.code,
            "timezone": self.timezone,
            "address": self.address,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "grid_connection_kw": self.grid_connection_kw,
            "tags": list(self.tags),
            "revision": self.revision,
        }


class Asset(Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("org_id", "serial", name="uq_assets_org_serial"),
        CheckConstraint("revision >= 1", name="ck_assets_revision_positive"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="ck_assets_not_own_parent"),
        Index("ix_assets_org_site_id", "org_id", "site_id", "id"),
        Index("ix_assets_org_type_id", "org_id", "type", "id"),
        Index("ix_assets_parent", "parent_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    type: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id"))
    name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str] = mapped_column(String(128))
    tags: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from outpost.db import Base, UTCDateTime


class DeviceCredential(Base):
    """A device's bearer secret for ingestion, stored as a SHA-256 digest (for HTTP) and
    as the broker's salted PBKDF2 hash (for Mosquitto's password file). An asset has at
    most one live credential: issuing a new one revokes the previous (rotation)."""

    __tablename__ = "device_credentials"
    __table_args__ = (Index("ix_device_credentials_org_asset", "org_id", "asset_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    #: No foreign key: a deleted asset's credentials stop authenticating (the lookup joins
    #: the asset) and stay as a record.
    asset_id: Mapped[str] = mapped_column(String(40))
    prefix: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    broker_hash: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audit_type = "device_credential"

    def audit_snapshot(self) -> dict[str, Any]:
        """Never the secret or its hashes."""
        return {
            "id": self.id,
            "asset_id": self.asset_id,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

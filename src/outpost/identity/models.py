"""Identity tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from outpost.db import Base, JSONDoc, UTCDateTime


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    mfa_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: The longest a grant may last in this organization.
    max_grant_hours: Mapped[int] = mapped_column(default=168, server_default="168")
    #: How long raw telemetry points are kept; the 1-minute and 1-hour rollups, longer.
    telemetry_raw_days: Mapped[int] = mapped_column(default=30, server_default="30")
    telemetry_rollup_days: Mapped[int] = mapped_column(default=730, server_default="730")

    audit_type = "organization"

    def audit_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "max_grant_hours": self.max_grant_hours,
            "telemetry_raw_days": self.telemetry_raw_days,
            "telemetry_rollup_days": self.telemetry_rollup_days,
        }


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audit_type = "user"

    def audit_snapshot(self) -> dict[str, Any]:
        """Never the password hash."""
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "is_active": self.is_active,
            "password_changed_at": None
            if self.password_changed_at is None
            else self.password_changed_at.isoformat(),
        }


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id", name="uq_membership_org_user"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    audit_type = "membership"

    def audit_snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "org_id": self.org_id, "user_id": self.user_id, "role": self.role}


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_org_user", "org_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The permissions the token may use (a subset of its user's role); None: the role's.
    permissions: Mapped[list[str] | None] = mapped_column(JSONDoc)
    #: The token's area, within its user's: a site, or an asset subtree (None: no narrowing).
    site_id: Mapped[str | None] = mapped_column(String(40))
    asset_id: Mapped[str | None] = mapped_column(String(40))

    audit_type = "token"

    def audit_snapshot(self) -> dict[str, Any]:
        """Never the secret or its hash."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "name": self.name,
            "prefix": self.prefix,
            "permissions": self.permissions,
            "site_id": self.site_id,
            "asset_id": self.asset_id,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    mfa_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginThrottle(Base):
    """Failed logins per account (``account:<sha256 of the email>``) or per source IP
    (``ip:<address>``): each failure past the free ones doubles the wait."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TotpFactor(Base):
    """A user's TOTP authenticator: the shared secret, encrypted at rest (it must be
    readable to check codes, so it cannot be hashed), and the last time step used,
    so a code works once."""

    __tablename__ = "mfa_totp"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(String(300))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecoveryCode(Base):
    """A single-use recovery code, stored as its SHA-256."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CustomRole(Base):
    """An organization's own role: a name and a set of permissions."""

    __tablename__ = "custom_roles"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_custom_roles_org_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(500), default="")
    permissions: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    audit_type = "role"

    def audit_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "permissions": sorted(self.permissions),
            "revision": self.revision,
        }


class Grant(Base):
    """A role held by a user on an area (the organization, a site, an asset subtree)
    between ``starts_at`` and ``expires_at``. A grant without ``expires_at`` is a standing
    assignment, which only a member manager can make."""

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_org_user", "org_id", "user_id"),
        Index("ix_grants_org_site", "org_id", "site_id"),
        Index("ix_grants_org_expires", "org_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[str | None] = mapped_column(String(40))
    asset_id: Mapped[str | None] = mapped_column(String(40))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(500))
    granted_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(40))
    revoke_reason: Mapped[str | None] = mapped_column(String(500))
    #: When the sweeper recorded the ``identity.grant.expired`` event.
    expiry_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    audit_type = "grant"

    def audit_snapshot(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "user_id": self.user_id,
            "role": self.role,
            "site_id": self.site_id,
            "asset_id": self.asset_id,
            "starts_at": iso(self.starts_at),
            "expires_at": iso(self.expires_at),
            "reason": self.reason,
            "granted_by": self.granted_by,
            "revoked_at": iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
        }


class AccessRequest(Base):
    """A user asking for a role on an area for a while; an approver's yes creates a grant."""

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_org_status", "org_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[str | None] = mapped_column(String(40))
    asset_id: Mapped[str | None] = mapped_column(String(40))
    duration_minutes: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # pending, approved, denied, cancelled, expired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(40))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    grant_id: Mapped[str | None] = mapped_column(String(40))

    audit_type = "access_request"

    def audit_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "role": self.role,
            "site_id": self.site_id,
            "asset_id": self.asset_id,
            "duration_minutes": self.duration_minutes,
            "reason": self.reason,
            "status": self.status,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
            "grant_id": self.grant_id,
        }


class Invitation(Base):
    """A single-use, expiring link for an external user: it sets their password and lands
    them with one grant. Only the link secret's SHA-256 is stored."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[str | None] = mapped_column(String(40))
    asset_id: Mapped[str | None] = mapped_column(String(40))
    duration_minutes: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500))
    invited_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    grant_id: Mapped[str | None] = mapped_column(String(40))

    audit_type = "invitation"

    def audit_snapshot(self) -> dict[str, Any]:
        """Never the secret or its hash."""
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "site_id": self.site_id,
            "asset_id": self.asset_id,
            "duration_minutes": self.duration_minutes,
            "reason": self.reason,
            "invited_by": self.invited_by,
            "expires_at": self.expires_at.isoformat(),
            "used_at": None if self.used_at is None else self.used_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "grant_id": self.grant_id,
        }

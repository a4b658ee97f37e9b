"""Device credentials: issued (and rotated) per asset, shown once, revocable.

A credential is a random bearer secret of 256 bits (``opd_<8 hex>_<43 chars>``),
stored as its SHA-256 digest for HTTP and as Mosquitto's salted hash for the broker.
An asset has at most one live credential: issuing a new one revokes the previous, so
rotation is one call. A device writes telemetry for itself only; a gateway's
credential also covers the assets below it (``telemetry/ingest.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.connectivity.models import DeviceCredential
from outpost.connectivity.mosquitto import broker_hash
from outpost.errors import NotFound, Unauthenticated
from outpost.identity.authz import authorize
from outpost.identity.principal import Actor, Principal
from outpost.identity.roles import Permission
from outpost.identity.secrets import digest, new_token
from outpost.inventory import scopes
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset

SECRET_PREFIX = "opd"
#: Asset types whose credential may also write for every asset below them.
FORWARDING_TYPES = frozenset({"gateway"})


@dataclass(frozen=True, slots=True)
class Device:
    """A device authenticated by its credential: it acts for ``asset_id`` (and, for a
    gateway, the assets below it)."""

    org_id: str
    asset_id: str
    asset_type: str
    credential_id: str

    @property
    def forwards(self) -> bool:
        return self.asset_type in FORWARDING_TYPES


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    credential: DeviceCredential
    secret: str


def is_device_secret(secret: str) -> bool:
    return secret.startswith(SECRET_PREFIX + "_")


def _writable_asset(session: Session, principal: Principal, asset_id: str) -> Asset:
    asset = inventory.get_asset(session, principal, asset_id)  # unreadable: 404
    authorize(principal, Permission.ASSET_WRITE, scopes.asset_scope(session, principal, asset))
    return asset


def issue_credential(session: Session, actor: Actor, asset_id: str) -> IssuedCredential:
    """A new credential for the asset, revoking its live one (rotation)."""
    asset = _writable_asset(session, actor.principal, asset_id)
    now = utcnow()
    for live in _live_credentials(session, asset.id):
        with audit.tracked(session, actor, Action.DEVICE_CREDENTIAL_REVOKED, live):
            live.revoked_at = now
    secret, prefix = new_token(SECRET_PREFIX)
    with audit.tracked(session, actor, Action.DEVICE_CREDENTIAL_ISSUED) as track:
        credential = DeviceCredential(
            id=ids.new_id("dcr"),
            org_id=asset.org_id,
            asset_id=asset.id,
            prefix=prefix,
            secret_hash=digest(secret),
            broker_hash=broker_hash(secret),
            created_by=actor.principal.user_id,
            created_at=now,
        )
        session.add(credential)
        track.obj = credential
    return IssuedCredential(credential, secret)


def revoke_credential(
    session: Session, actor: Actor, asset_id: str, credential_id: str
) -> DeviceCredential:
    asset = _writable_asset(session, actor.principal, asset_id)
    credential = session.scalar(
        select(DeviceCredential).where(
            DeviceCredential.id == credential_id, DeviceCredential.asset_id == asset.id
        )
    )
    if credential is None:
        raise NotFound(f"No credential {credential_id} on asset {asset_id}.")
    if credential.revoked_at is None:
        with audit.tracked(session, actor, Action.DEVICE_CREDENTIAL_REVOKED, credential):
            credential.revoked_at = utcnow()
    return credential


def list_credentials(
    session: Session, principal: Principal, asset_id: str
) -> list[DeviceCredential]:
    """The asset's credentials, newest first (revoked ones included, as a record)."""
    asset = inventory.get_asset(session, principal, asset_id)
    return list(
        session.scalars(
            select(DeviceCredential)
            .where(DeviceCredential.asset_id == asset.id)
            .order_by(DeviceCredential.created_at.desc(), DeviceCredential.id.desc())
            .limit(100)
        )
    )


def _live_credentials(session: Session, asset_id: str) -> list[DeviceCredential]:
    return list(
        session.scalars(
            select(DeviceCredential).where(
                DeviceCredential.asset_id == asset_id, DeviceCredential.revoked_at.is_(None)
            )
        )
    )


def authenticate_device(session: Session, secret: str) -> Device:
    """The device a live credential belongs to; Unauthenticated otherwise."""
    row = session.execute(
        select(DeviceCredential.id, DeviceCredential.org_id, Asset.id, Asset.type)
        .join(
            Asset,
            (Asset.id == DeviceCredential.asset_id) & (Asset.org_id == DeviceCredential.org_id),
        )
        .where(DeviceCredential.secret_hash == digest(secret))
        .where(DeviceCredential.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        raise Unauthenticated("The device credential is unknown or revoked, or its asset is gone.")
    return Device(org_id=row[1], asset_id=row[2], asset_type=row[3], credential_id=row[0])


def find_device(session: Session, asset_id: str) -> Device | None:
    """The device behind ``asset_id`` if it has a live credential (the MQTT broker has
    already checked the secret: the topic names the device)."""
    row = session.execute(
        select(DeviceCredential.id, DeviceCredential.org_id, Asset.type)
        .join(
            Asset,
            (Asset.id == DeviceCredential.asset_id) & (Asset.org_id == DeviceCredential.org_id),
        )
        .where(DeviceCredential.asset_id == asset_id, DeviceCredential.revoked_at.is_(None))
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return Device(org_id=row[1], asset_id=asset_id, asset_type=row[2], credential_id=row[0])


def live_broker_entries(session: Session) -> list[tuple[str, str]]:
    """``(username, broker hash)`` of every live credential whose asset still exists,
    for Mosquitto's password file (the username is the asset id)."""
    rows = session.execute(
        select(DeviceCredential.asset_id, DeviceCredential.broker_hash)
        .join(Asset, Asset.id == DeviceCredential.asset_id)
        .where(DeviceCredential.revoked_at.is_(None))
        .order_by(DeviceCredential.asset_id)
    )
    return [(row[0], row[1]) for row in rows]

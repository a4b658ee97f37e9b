"""Device credential API models (never the secret's hashes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class CredentialOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    asset_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class CredentialIssued(CredentialOut):
    secret: str
    mqtt_username: str
    mqtt_topic: str


class CredentialList(BaseModel):
    items: list[CredentialOut]

"""Invitation API models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from outpost.identity.schemas import ObjectId, Reason, Strict

#: The longest any organization lets a grant last (366 days), in minutes; each
#: organization's own maximum is checked by the service.
MAX_MINUTES = 366 * 24 * 60

InvitationState = Literal["pending", "accepted", "revoked", "expired"]


class InvitationCreate(Strict):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    role: Annotated[str, Field(min_length=1, max_length=40)]
    site_id: ObjectId | None = Field(default=None, description="Scope: a site ...")
    asset_id: ObjectId | None = Field(
        default=None, description="... or an asset and everything below it; neither: all."
    )
    duration_minutes: Annotated[int, Field(ge=1, le=MAX_MINUTES)] = Field(
        description="How long the grant lasts, counted from acceptance; at most the "
        "organization's maximum grant duration (default 7 days)."
    )
    reason: Reason


class InvitationFilterIn(Strict):
    state: InvitationState | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=40)] | None = None


class InvitationOut(BaseModel):
    id: str
    email: str
    role: str
    site_id: str | None
    asset_id: str | None
    duration_minutes: int
    reason: str
    invited_by: str
    created_at: datetime
    expires_at: datetime = Field(description="The link works until then (72 hours).")
    used_at: datetime | None
    revoked_at: datetime | None
    grant_id: str | None = Field(description="The grant given on acceptance.")
    state: InvitationState


class InvitationIssued(InvitationOut):
    url: str = Field(
        description="The link's path, /invite/<secret>: shown once, never again. Send it "
        "to the invitee; whoever holds it can accept."
    )

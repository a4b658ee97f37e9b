"""Access request API models (kept apart from ``schemas.py``: one topic, one file)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from outpost.identity.schemas import ObjectId, Reason, Strict

#: A generous ceiling (a year) so an absurd number is a 422, not an overflow; the real
#: limit is the organization's maximum grant duration, checked by the service.
DURATION_CEILING = 366 * 24 * 60

RequestStatus = Literal["pending", "approved", "denied", "cancelled", "expired"]


class AccessRequestCreate(Strict):
    role: Annotated[str, Field(min_length=1, max_length=40)]
    site_id: ObjectId | None = Field(default=None, description="Scope: a site ...")
    asset_id: ObjectId | None = Field(
        default=None, description="... or an asset and everything below it; neither: all."
    )
    duration_minutes: Annotated[int, Field(ge=1, le=DURATION_CEILING)] = Field(
        description="How long the grant lasts once approved; at most the organization's "
        "maximum grant duration (default 7 days)."
    )
    reason: Reason


class AccessRequestDecision(Strict):
    reason: Reason


class AccessRequestFilterIn(Strict):
    status: RequestStatus | None = None
    mine: bool = Field(default=False, description="Only your own requests.")
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=200)] | None = None


class AccessRequestOut(BaseModel):
    id: str
    user_id: str
    role: str
    site_id: str | None
    asset_id: str | None
    duration_minutes: int
    reason: str
    status: RequestStatus = Field(description="A pending request past expires_at reads as expired.")
    created_at: datetime
    expires_at: datetime = Field(
        description="When the request lapses unanswered (not the grant's end)."
    )
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    grant_id: str | None = Field(description="The grant an approval created.")

"""Identity API models."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from outpost.identity.principal import Area
from outpost.identity.roles import Permission


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        default=None, description="Default and maximum: OUTPOST_TOKEN_MAX_DAYS (90)."
    )
    permissions: Annotated[list[Permission], Field(max_length=50)] | None = Field(
        default=None,
        description="Narrow the token to these permissions (all must be held); "
        "null: the permissions of your role.",
    )
    site_id: Annotated[str, Field(min_length=1, max_length=40)] | None = Field(
        default=None, description="Narrow the token to one site ..."
    )
    asset_id: Annotated[str, Field(min_length=1, max_length=40)] | None = Field(
        default=None, description="... or to an asset and everything below it."
    )

    @model_validator(mode="after")
    def _one_area(self) -> TokenCreate:
        if self.site_id and self.asset_id:
            raise ValueError("Name a site or an asset, not both.")
        return self

    @property
    def area(self) -> Area:
        return Area(self.site_id, self.asset_id)

    @property
    def expires_in(self) -> timedelta | None:
        return None if self.expires_in_days is None else timedelta(days=self.expires_in_days)


class TokenOut(BaseModel):
    id: str
    name: str
    prefix: str
    user_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    permissions: list[str] | None
    site_id: str | None = None
    asset_id: str | None = None


class TokenIssued(TokenOut):
    token: str = Field(description="The secret: shown once, never again.")


class MeOut(BaseModel):
    org_id: str
    user_id: str
    role: str
    label: str
    token_id: str | None
    permissions: list[str] = Field(description="What the caller may do: role ∩ token scope.")


# --- grants -----------------------------------------------------------------------------

ObjectId = Annotated[str, Field(min_length=1, max_length=40)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GrantCreate(Strict):
    user_id: ObjectId
    role: Annotated[str, Field(min_length=1, max_length=40)]
    site_id: ObjectId | None = Field(default=None, description="Scope: a site ...")
    asset_id: ObjectId | None = Field(
        default=None, description="... or an asset and everything below it; neither: all."
    )
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    expires_at: datetime | None = Field(
        default=None,
        description="Required except for a member manager's standing assignment; at most "
        "the organization's maximum grant duration (default 7 days) after the start.",
    )
    reason: Reason


class GrantEnd(Strict):
    reason: Reason


class GrantEarlyEnd(Strict):
    reason: Annotated[str, Field(max_length=500)] = ""


class GrantFilterIn(Strict):
    user_id: ObjectId | None = None
    site_id: ObjectId | None = None
    asset_id: ObjectId | None = None
    state: Literal["active", "upcoming", "ended"] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=40)] | None = None


class GrantOut(BaseModel):
    id: str
    user_id: str
    role: str
    site_id: str | None
    asset_id: str | None
    starts_at: datetime
    expires_at: datetime | None
    reason: str
    granted_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    active: bool = Field(default=False, description="In force right now.")

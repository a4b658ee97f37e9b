"""Identity API models."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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


class TokenIssued(TokenOut):
    token: str = Field(description="The secret: shown once, never again.")


class MeOut(BaseModel):
    org_id: str
    user_id: str
    role: str
    label: str
    token_id: str | None
    permissions: list[str] = Field(description="What the caller may do: role ∩ token scope.")

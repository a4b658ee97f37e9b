"""Identity API models."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(min_length=1, max_length=200)]
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @property
    def expires_in(self) -> timedelta | None:
        return timedelta(days=self.expires_in_days) if self.expires_in_days else None


class TokenOut(BaseModel):
    id: str
    name: str
    prefix: str
    user_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIssued(TokenOut):
    token: str = Field(description="The secret: shown once, never again.")


class MeOut(BaseModel):
    org_id: str
    user_id: str
    role: str
    label: str
    token_id: str | None

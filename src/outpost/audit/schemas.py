"""Audit API models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AuditFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object_type: Annotated[str, Field(max_length=40)] | None = None
    object_id: Annotated[str, Field(max_length=40)] | None = None
    actor_id: Annotated[str, Field(max_length=40)] | None = None
    action: Annotated[str, Field(max_length=80)] | None = None
    request_id: Annotated[str, Field(max_length=128)] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    cursor: Annotated[str, Field(max_length=200)] | None = None


class AuditExportQuery(AuditFilter):
    format: Literal["jsonl", "csv"] = "jsonl"
    limit: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000_000


class AuditEventOut(BaseModel):
    id: str
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: str
    actor_label: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    source_ip: str | None
    user_agent: str | None
    reason: str | None
    hash: str

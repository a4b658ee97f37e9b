"""Request and response models of the inventory API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Name = Annotated[str, Field(min_length=1, max_length=200)]
Serial = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
Tags = Annotated[list[Tag], Field(max_length=50)]
ObjectId = Annotated[str, Field(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- sites ------------------------------------------------------------------------------


class SiteFields(Strict):
    name: Name
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    timezone: str = "UTC"
    address: Annotated[str, Field(max_length=500)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    grid_connection_kw: Annotated[float, Field(gt=0, le=10_000_000)] | None = None
    tags: Tags = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class SiteCreate(SiteFields):
    pass


class SiteOut(BaseModel):
    id: str
    name: str
    code: str
    timezone: str
    address: str | None
    latitude: float | None
    longitude: float | None
    grid_connection_kw: float | None
    tags: list[str]
    revision: int
    created_at: datetime
    updated_at: datetime
    asset_count: int | None = None


class SiteFilter(Strict):
    q: Annotated[str, Field(max_length=200)] | None = None
    tag: Tag | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=200)] | None = None


# --- assets -----------------------------------------------------------------------------


class AssetFields(Strict):
    """The editable fields of an asset, as a PUT or a merged PATCH must leave them."""

    site_id: ObjectId
    parent_id: ObjectId | None = None
    name: Name
    serial: Serial
    config: dict[str, Any] = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)


class AssetCreate(AssetFields):
    type: Annotated[str, Field(min_length=1, max_length=64)]


class AssetReplace(AssetFields):
    type: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class AssetOut(BaseModel):
    id: str
    site_id: str
    type: str
    parent_id: str | None
    name: str
    serial: str
    tags: list[str]
    config: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime


class AssetFilter(Strict):
    site_id: ObjectId | None = None
    type: Annotated[str, Field(max_length=64)] | None = None
    parent_id: ObjectId | None = None
    tag: Tag | None = None
    q: Annotated[str, Field(max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Annotated[str, Field(max_length=200)] | None = None


class DeleteOptions(Strict):
    cascade: bool = False


# --- change sets ------------------------------------------------------------------------

Ref = Annotated[str, Field(min_length=1, max_length=64)]


class CreateOp(AssetCreate):
    op: Literal["create"]
    ref: Ref | None = None
    parent_id: ObjectId | None = None
    parent_ref: Ref | None = None


class UpdateOp(Strict):
    """A JSON merge patch (RFC 7396) over the asset's editable fields."""

    op: Literal["update"]
    id: ObjectId
    if_revision: Annotated[int, Field(ge=1)] | None = None
    patch: dict[str, Any]


class MoveOp(Strict):
    op: Literal["move"]
    id: ObjectId
    if_revision: Annotated[int, Field(ge=1)] | None = None
    site_id: ObjectId | None = None
    parent_id: ObjectId | None = None
    parent_ref: Ref | None = None


class DeleteOp(Strict):
    op: Literal["delete"]
    id: ObjectId
    if_revision: Annotated[int, Field(ge=1)] | None = None
    cascade: bool = False


Operation = Annotated[CreateOp | UpdateOp | MoveOp | DeleteOp, Field(discriminator="op")]


class ChangeSetIn(Strict):
    operations: Annotated[list[Operation], Field(min_length=1, max_length=30_000)]
    reason: Annotated[str, Field(max_length=1000)] | None = None


class ChangeSetQuery(Strict):
    dry_run: bool = False


class ViolationOut(BaseModel):
    code: str
    message: str
    path: str
    object_id: str | None
    related: list[str]


class AssetDiff(BaseModel):
    op: str
    asset_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ChangeSetResult(BaseModel):
    dry_run: bool
    valid: bool
    applied: bool
    summary: dict[str, int]
    changes: list[AssetDiff]
    affected: list[str]
    violations: list[ViolationOut]


class AssetTypeOut(BaseModel):
    key: str
    label: str
    parent_types: list[str]
    config_schema: dict[str, Any]

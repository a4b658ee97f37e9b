"""Request and response models of the files API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from outpost.inventory.schemas import ObjectId, Strict, Tags

Text = Annotated[str, Field(max_length=2000)]
FolderPath = Annotated[str, Field(max_length=1024)]
FileName = Annotated[str, Field(min_length=1, max_length=255)]
Cursor = Annotated[str, Field(max_length=600)]


class FilePlace(Strict):
    """Where a file goes: on a site, on an asset, or (neither) on the organization."""

    site_id: ObjectId | None = None
    asset_id: ObjectId | None = None
    folder: FolderPath = "/"


class FileUpload(FilePlace):
    """The fields sent with an upload (form fields, or query parameters of a PUT)."""

    name: FileName
    description: Text = ""
    tags: Tags = Field(default_factory=list)


class FileUpdate(Strict):
    """A rename, a move to another folder of the same owner, or new metadata."""

    name: FileName | None = None
    folder: FolderPath | None = None
    description: Text | None = None
    tags: Tags | None = None


class FileFilter(FilePlace):
    folder: FolderPath | None = None  # type: ignore[assignment]
    owner: Literal["organization", "site", "asset"] | None = None
    q: Annotated[str, Field(max_length=200)] | None = None
    tag: Annotated[str, Field(max_length=64)] | None = None
    content_type: Annotated[str, Field(max_length=255)] | None = None
    deleted: bool = False
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    cursor: Cursor | None = None


class FolderQuery(FilePlace):
    pass


class DownloadQuery(Strict):
    version: Annotated[int, Field(ge=1)] | None = None
    inline: bool = False


class FileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_type: str
    owner_id: str
    folder: str
    name: str
    description: str
    tags: list[str]
    content_type: str
    size: int
    sha256: str
    version_count: int
    revision: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: int
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    created_by: str


class FolderOut(BaseModel):
    folder: str
    subfolders: list[str]


# --- shares -----------------------------------------------------------------------------


class ShareCreate(Strict):
    grantee_type: Literal["user", "role"]
    grantee_id: ObjectId
    access: Literal["read", "write"] = "read"
    expires_at: datetime


class FolderShareCreate(ShareCreate, FilePlace):
    """A share on a folder of the organization, a site or an asset."""


class ShareOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    file_id: str | None
    owner_type: str
    owner_id: str
    folder: str | None
    grantee_type: str
    grantee_id: str
    access: str
    expires_at: datetime
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


# --- links ------------------------------------------------------------------------------


class LinkCreate(Strict):
    file_id: ObjectId
    expires_in_hours: Annotated[float, Field(gt=0)] = 24
    password: Annotated[str, Field(min_length=8, max_length=200)] | None = None
    max_downloads: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class LinkFilter(Strict):
    file_id: ObjectId


class LinkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    file_id: str
    prefix: str
    has_password: bool
    max_downloads: int | None
    download_count: int
    expires_at: datetime
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class LinkIssued(LinkOut):
    """Returned once, on creation: ``url`` holds the secret and is never shown again."""

    url: str

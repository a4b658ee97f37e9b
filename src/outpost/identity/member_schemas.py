"""API models for members, roles and the organization's access settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from outpost.identity.roles import Permission

RoleName = Annotated[str, Field(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MemberOut(BaseModel):
    user_id: str
    email: str
    role: str


class MemberRoleIn(Strict):
    role: RoleName


class RoleOut(BaseModel):
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    revision: int


class RoleCreate(Strict):
    name: Annotated[str, Field(min_length=2, max_length=40)]
    description: Annotated[str, Field(max_length=500)] = ""
    permissions: Annotated[list[Permission], Field(max_length=50)]


class RolePatch(Strict):
    description: Annotated[str, Field(max_length=500)] | None = None
    permissions: Annotated[list[Permission], Field(max_length=50)] | None = None


class OrganizationAccessIn(Strict):
    max_grant_hours: Annotated[int, Field(ge=1, le=24 * 366)]


class OrganizationAccessOut(BaseModel):
    id: str
    name: str
    max_grant_hours: int
    mfa_required: bool

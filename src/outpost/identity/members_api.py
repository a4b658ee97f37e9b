"""Members, roles and the organization's access settings: ``/api/v1/members``,
``/roles``, ``/organization``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, g, jsonify

from outpost.identity import custom_roles, members, service
from outpost.identity.member_schemas import (
    MemberOut,
    MemberRoleIn,
    OrganizationAccessIn,
    OrganizationAccessOut,
    RoleCreate,
    RoleOut,
    RolePatch,
)
from outpost.identity.models import Organization
from outpost.web.context import actor, principal, transaction
from outpost.web.openapi import endpoint, if_match_revision
from outpost.web.pages import Paged, paged
from outpost.web.responses import with_etag

bp = Blueprint("members_api", __name__, url_prefix="/api/v1")

SENSITIVE = {
    403: "Forbidden, or type mfa-required: this needs a second factor confirmed in the web "
    "UI within 15 minutes when the user has MFA",
    422: "Invalid",
}


def _web_session() -> str | None:
    return getattr(g, "web_session_id", None)


# --- members ----------------------------------------------------------------------------


@bp.get("/members")
@endpoint(
    summary="The organization's members and their standing roles", tag="members", response=Paged
)
def list_members() -> Response:
    with transaction() as session:
        found = service.list_members(session, principal())
        return jsonify(paged([asdict(member) for member in found], None))


@bp.patch("/members/<user_id>")
@endpoint(
    summary="Change a member's standing role (counts from their next request)",
    tag="members",
    body=MemberRoleIn,
    response=MemberOut,
    extra_responses={**SENSITIVE, 409: "The organization's last admin"},
)
def set_member_role(user_id: str, body: MemberRoleIn) -> Response:
    with transaction() as session:
        members.set_member_role(session, actor(), user_id, body.role, web_session_id=_web_session())
        member = service.get_member(session, principal(), user_id)
        return jsonify(MemberOut(**asdict(member)).model_dump())


@bp.delete("/members/<user_id>")
@endpoint(
    summary="Remove a member: their sessions, tokens and grants here end now",
    tag="members",
    status=204,
    extra_responses={**SENSITIVE, 409: "The organization's last admin"},
)
def remove_member(user_id: str) -> Response:
    with transaction() as session:
        members.remove_member(session, actor(), user_id, web_session_id=_web_session())
    return Response(status=204)


# --- roles ------------------------------------------------------------------------------


def role_out(view: custom_roles.RoleView) -> dict[str, Any]:
    return RoleOut(**asdict(view)).model_dump()


@bp.get("/roles")
@endpoint(summary="Built-in and custom roles with their permissions", tag="members", response=Paged)
def list_roles() -> Response:
    with transaction() as session:
        return jsonify(
            paged([role_out(r) for r in custom_roles.list_roles(session, principal())], None)
        )


@bp.post("/roles")
@endpoint(
    summary="Create a custom role",
    tag="members",
    body=RoleCreate,
    response=RoleOut,
    status=201,
    etag=True,
    extra_responses={**SENSITIVE, 409: "Name taken"},
)
def create_role(body: RoleCreate) -> Response:
    with transaction() as session:
        custom_roles.create_role(
            session,
            actor(),
            name=body.name,
            permissions=body.permissions,
            description=body.description,
            web_session_id=_web_session(),
        )
        view = custom_roles.get_role(session, principal(), body.name)
        return with_etag(role_out(view), view.revision, 201)


@bp.get("/roles/<name>")
@endpoint(summary="Get a role", tag="members", response=RoleOut, etag=True)
def get_role(name: str) -> Response:
    with transaction() as session:
        view = custom_roles.get_role(session, principal(), name)
        return with_etag(role_out(view), view.revision)


@bp.patch("/roles/<name>")
@endpoint(
    summary="Change a custom role (its holders get the change on their next request)",
    tag="members",
    body=RolePatch,
    response=RoleOut,
    etag=True,
    if_match=True,
    extra_responses=SENSITIVE,
)
def update_role(name: str, body: RolePatch) -> Response:
    with transaction() as session:
        custom_roles.update_role(
            session,
            actor(),
            name,
            if_revision=if_match_revision(),
            permissions=body.permissions,
            description=body.description,
            web_session_id=_web_session(),
        )
        view = custom_roles.get_role(session, principal(), name)
        return with_etag(role_out(view), view.revision)


@bp.delete("/roles/<name>")
@endpoint(
    summary="Delete a custom role that nobody holds",
    tag="members",
    status=204,
    if_match=True,
    extra_responses={**SENSITIVE, 409: "Still in use"},
)
def delete_role(name: str) -> Response:
    with transaction() as session:
        custom_roles.delete_role(
            session, actor(), name, if_revision=if_match_revision(), web_session_id=_web_session()
        )
    return Response(status=204)


# --- the organization -------------------------------------------------------------------


def organization_out(org: Organization) -> dict[str, Any]:
    return OrganizationAccessOut.model_validate(org, from_attributes=True).model_dump()


@bp.get("/organization")
@endpoint(
    summary="The organization's access settings", tag="members", response=OrganizationAccessOut
)
def get_organization() -> Response:
    with transaction() as session:
        return jsonify(organization_out(service.get_organization(session, principal())))


@bp.patch("/organization")
@endpoint(
    summary="Set the organization's maximum grant duration",
    tag="members",
    body=OrganizationAccessIn,
    response=OrganizationAccessOut,
    extra_responses=SENSITIVE,
)
def update_organization(body: OrganizationAccessIn) -> Response:
    with transaction() as session:
        org = members.set_max_grant_hours(
            session, actor(), body.max_grant_hours, web_session_id=_web_session()
        )
        return jsonify(organization_out(org))

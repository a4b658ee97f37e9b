"""Grants REST API: temporary delegation of a role on a scope."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify

from outpost.clock import utcnow
from outpost.identity import grants
from outpost.identity.models import Grant
from outpost.identity.schemas import GrantCreate, GrantEarlyEnd, GrantEnd, GrantFilterIn, GrantOut
from outpost.web.context import actor, principal, transaction
from outpost.web.openapi import endpoint
from outpost.web.pages import Paged, paged
from outpost.web.responses import created

bp = Blueprint("grants_api", __name__, url_prefix="/api/v1")

GRANT_ERRORS = {
    403: "Forbidden, or type mfa-required: giving access needs a second factor confirmed "
    "in the web UI within 15 minutes when the user has MFA",
    422: "Invalid, or against the subset rule",
}


def grant_out(grant: Grant) -> dict[str, Any]:
    active = grants.is_live(grant, utcnow())
    out = GrantOut.model_validate(grant, from_attributes=True).model_copy(update={"active": active})
    return out.model_dump(mode="json")


@bp.get("/grants")
@endpoint(
    summary="List grants: yours, and those you could give (newest first)",
    tag="grants",
    query=GrantFilterIn,
    response=Paged,
)
def list_grants(query: GrantFilterIn) -> Response:
    with transaction() as session:
        found = grants.list_grants(session, principal(), grants.GrantFilter(**query.model_dump()))
        page, more = found[: query.limit], len(found) > query.limit
        return jsonify(paged([grant_out(x) for x in page], page[-1].id if more else None))


@bp.post("/grants")
@endpoint(
    summary="Give a member a role on a scope until a time, with a reason",
    tag="grants",
    body=GrantCreate,
    response=GrantOut,
    status=201,
    extra_responses=GRANT_ERRORS,
)
def create_grant(body: GrantCreate) -> Response:
    with transaction() as session:
        grant = grants.create_grant(
            session,
            actor(body.reason),
            grants.GrantSpec(**body.model_dump()),
            web_session_id=getattr(g, "web_session_id", None),
        )
        return created(grant_out(grant))


@bp.get("/grants/<grant_id>")
@endpoint(summary="Get a grant", tag="grants", response=GrantOut)
def get_grant(grant_id: str) -> Response:
    with transaction() as session:
        return jsonify(grant_out(grants.get_grant(session, principal(), grant_id)))


@bp.post("/grants/<grant_id>/revoke")
@endpoint(
    summary="Revoke a grant now, with a reason",
    tag="grants",
    body=GrantEnd,
    response=GrantOut,
    extra_responses={409: "Already ended"},
)
def revoke_grant(grant_id: str, body: GrantEnd) -> Response:
    with transaction() as session:
        grant = grants.revoke_grant(session, actor(body.reason), grant_id, body.reason)
        return jsonify(grant_out(grant))


@bp.post("/grants/<grant_id>/end")
@endpoint(
    summary='End your own grant early ("I\'m done")',
    tag="grants",
    body=GrantEarlyEnd,
    response=GrantOut,
    extra_responses={409: "Already ended"},
)
def end_grant(grant_id: str, body: GrantEarlyEnd) -> Response:
    with transaction() as session:
        grant = grants.end_grant(session, actor(body.reason or None), grant_id, body.reason)
        return jsonify(grant_out(grant))

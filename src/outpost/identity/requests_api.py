"""Access requests REST API: ask for a role on a scope for a while; approvers answer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify

from outpost.clock import utcnow
from outpost.identity import requests
from outpost.identity.models import AccessRequest
from outpost.identity.request_schemas import (
    AccessRequestCreate,
    AccessRequestDecision,
    AccessRequestFilterIn,
    AccessRequestOut,
)
from outpost.web.context import actor, principal, transaction
from outpost.web.openapi import endpoint
from outpost.web.pages import Paged, paged
from outpost.web.responses import created

bp = Blueprint("requests_api", __name__, url_prefix="/api/v1")

NOT_PENDING = {409: "The request is no longer pending (decided, cancelled or expired)"}


def request_out(request: AccessRequest) -> dict[str, Any]:
    out = AccessRequestOut.model_validate(request, from_attributes=True)
    status = requests.status_at(request, utcnow())
    return out.model_copy(update={"status": status}).model_dump(mode="json")


@bp.get("/access-requests")
@endpoint(
    summary="List access requests: yours, and those you could approve (newest first)",
    tag="access-requests",
    query=AccessRequestFilterIn,
    response=Paged,
)
def list_requests(query: AccessRequestFilterIn) -> Response:
    with transaction() as session:
        page = requests.list_requests(session, principal(), **query.model_dump())
        return jsonify(paged([request_out(x) for x in page.items], page.next_cursor))


@bp.post("/access-requests")
@endpoint(
    summary="Ask for a role on a scope for a while, with a reason",
    tag="access-requests",
    body=AccessRequestCreate,
    response=AccessRequestOut,
    status=201,
    extra_responses={409: "Too many requests waiting for an answer"},
)
def create_request(body: AccessRequestCreate) -> Response:
    with transaction() as session:
        request = requests.request_access(session, actor(body.reason), **body.model_dump())
        return created(request_out(request))


@bp.get("/access-requests/<request_id>")
@endpoint(summary="Get an access request", tag="access-requests", response=AccessRequestOut)
def get_request(request_id: str) -> Response:
    with transaction() as session:
        return jsonify(request_out(requests.get_request(session, principal(), request_id)))


@bp.post("/access-requests/<request_id>/approve")
@endpoint(
    summary="Approve an access request: gives the grant, from you, starting now",
    tag="access-requests",
    body=AccessRequestDecision,
    response=AccessRequestOut,
    extra_responses={
        403: "Your own request, no grant.create on its scope, or type mfa-required: "
        "giving access needs a second factor confirmed in the web UI within 15 minutes",
        **NOT_PENDING,
    },
)
def approve_request(request_id: str, body: AccessRequestDecision) -> Response:
    with transaction() as session:
        request = requests.approve(
            session,
            actor(body.reason),
            request_id,
            reason=body.reason,
            web_session_id=getattr(g, "web_session_id", None),
        )
        return jsonify(request_out(request))


@bp.post("/access-requests/<request_id>/deny")
@endpoint(
    summary="Deny an access request, with a reason",
    tag="access-requests",
    body=AccessRequestDecision,
    response=AccessRequestOut,
    extra_responses={403: "Your own request, or no grant.create on its scope", **NOT_PENDING},
)
def deny_request(request_id: str, body: AccessRequestDecision) -> Response:
    with transaction() as session:
        request = requests.deny(session, actor(body.reason), request_id, reason=body.reason)
        return jsonify(request_out(request))


@bp.post("/access-requests/<request_id>/cancel")
@endpoint(
    summary="Cancel your own pending access request",
    tag="access-requests",
    response=AccessRequestOut,
    extra_responses={403: "Not your request", **NOT_PENDING},
)
def cancel_request(request_id: str) -> Response:
    with transaction() as session:
        return jsonify(request_out(requests.cancel(session, actor(), request_id)))

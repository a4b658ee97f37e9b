"""Invitations REST API: expiring, single-use links that bring an external user in with
one grant. The link itself is accepted on a page (``invitation_views``), never here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, url_for

from outpost.clock import utcnow
from outpost.identity import invitations
from outpost.identity.invitation_schemas import (
    InvitationCreate,
    InvitationFilterIn,
    InvitationIssued,
    InvitationOut,
)
from outpost.identity.models import Invitation
from outpost.web.context import actor, principal, transaction
from outpost.web.openapi import endpoint
from outpost.web.pages import Paged, paged
from outpost.web.responses import created

bp = Blueprint("invitations_api", __name__, url_prefix="/api/v1")

INVITE_ERRORS = {
    403: "Forbidden, or type mfa-required: inviting needs a second factor confirmed in the "
    "web UI within 15 minutes when the user has MFA",
    422: "Invalid, or against the subset rule",
}


def invitation_out(invitation: Invitation) -> dict[str, Any]:
    shown = {
        name: getattr(invitation, name) for name in InvitationOut.model_fields if name != "state"
    }
    shown["state"] = invitations.state_of(invitation, utcnow())
    return InvitationOut.model_validate(shown).model_dump(mode="json")


@bp.get("/invitations")
@endpoint(
    summary="List invitations: those you made, every one for a member manager (newest first)",
    tag="invitations",
    query=InvitationFilterIn,
    response=Paged,
)
def list_invitations(query: InvitationFilterIn) -> Response:
    with transaction() as session:
        found = invitations.list_invitations(
            session, principal(), invitations.InvitationFilter(**query.model_dump())
        )
        page, more = found[: query.limit], len(found) > query.limit
        return jsonify(paged([invitation_out(x) for x in page], page[-1].id if more else None))


@bp.post("/invitations")
@endpoint(
    summary="Invite someone by email to a role on a scope for a while; the link is shown once",
    tag="invitations",
    body=InvitationCreate,
    response=InvitationIssued,
    status=201,
    extra_responses=INVITE_ERRORS,
)
def create_invitation(body: InvitationCreate) -> Response:
    with transaction() as session:
        issued = invitations.invite(
            session,
            actor(body.reason),
            **body.model_dump(),
            web_session_id=getattr(g, "web_session_id", None),
        )
        url = url_for("invitations.invitation", secret=issued.secret)
        return created({**invitation_out(issued.invitation), "url": url}, holds_secret=True)


@bp.delete("/invitations/<invitation_id>")
@endpoint(
    summary="Revoke an invitation: its link stops working",
    tag="invitations",
    status=204,
    extra_responses={409: "Already accepted: revoke its grant instead"},
)
def revoke_invitation(invitation_id: str) -> Response:
    with transaction() as session:
        invitations.revoke_invitation(session, actor(), invitation_id)
    return Response(status=204)

"""Identity REST API: who am I, and API tokens."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from outpost.identity import service
from outpost.identity.authz import permissions_of
from outpost.identity.models import ApiToken
from outpost.identity.schemas import MeOut, TokenCreate, TokenIssued, TokenOut
from outpost.web.context import actor, principal, services, transaction
from outpost.web.openapi import endpoint
from outpost.web.pages import Paged, paged
from outpost.web.responses import created

bp = Blueprint("identity_api", __name__, url_prefix="/api/v1")


def token_out(token: ApiToken) -> dict[str, object]:
    return TokenOut.model_validate(token, from_attributes=True).model_dump(mode="json")


@bp.get("/me")
@endpoint(summary="The caller: organization, user, role", tag="identity", response=MeOut)
def me() -> Response:
    who = principal()
    return jsonify(
        MeOut(
            org_id=who.org_id,
            user_id=who.user_id,
            role=who.role,
            label=who.label,
            token_id=who.token_id,
            permissions=sorted(permissions_of(who)),
        ).model_dump(mode="json")
    )


@bp.get("/tokens")
@endpoint(summary="List API tokens (yours; an admin sees all)", tag="identity", response=Paged)
def list_tokens() -> Response:
    with transaction() as session:
        tokens = service.list_tokens(session, principal())
        return jsonify(paged([token_out(t) for t in tokens], None))


@bp.post("/tokens")
@endpoint(
    summary="Create an API token; the secret is in this response only",
    tag="identity",
    body=TokenCreate,
    response=TokenIssued,
    status=201,
    extra_responses={
        403: "Forbidden, or type mfa-required: the user has MFA (or the organization requires "
        "it) and a token cannot confirm a second factor; create the token in the web UI",
        422: "Invalid",
    },
)
def create_token(body: TokenCreate) -> Response:
    with transaction() as session:
        issued = service.create_token(
            session,
            actor(),
            name=body.name,
            expires_in=body.expires_in,
            permissions=body.permissions,
            area=body.area,
            max_lifetime=services().settings.token_max_lifetime,
        )
        return created({**token_out(issued.token), "token": issued.secret}, holds_secret=True)


@bp.delete("/tokens/<token_id>")
@endpoint(summary="Revoke an API token", tag="identity", status=204)
def revoke_token(token_id: str) -> Response:
    with transaction() as session:
        service.revoke_token(session, actor(), token_id)
    return Response(status=204)

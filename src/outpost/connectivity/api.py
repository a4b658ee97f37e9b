"""Device credentials: issue (rotate), list, revoke."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from outpost.connectivity import credentials
from outpost.connectivity.schemas import CredentialIssued, CredentialList, CredentialOut
from outpost.web.context import actor, principal, request_session, transaction
from outpost.web.openapi import endpoint
from outpost.web.responses import created

bp = Blueprint("connectivity", __name__, url_prefix="/api/v1")


@bp.post("/assets/<asset_id>/credentials")
@endpoint(
    summary="Issue a device credential (revokes the asset's previous one); shown once",
    tag="connectivity",
    response=CredentialIssued,
    status=201,
    extra_responses={403: "Forbidden (asset.write)", 404: "No such asset"},
)
def issue_credential(asset_id: str) -> Response:
    with transaction() as session:
        issued = credentials.issue_credential(session, actor(), asset_id)
        out = CredentialOut.model_validate(issued.credential).model_dump(mode="json")
    return created(
        {
            **out,
            "secret": issued.secret,
            "mqtt_username": issued.credential.asset_id,
            "mqtt_topic": f"outpost/devices/{issued.credential.asset_id}/telemetry",
        },
        holds_secret=True,
    )


@bp.get("/assets/<asset_id>/credentials")
@endpoint(summary="An asset's device credentials", tag="connectivity", response=CredentialList)
def list_credentials(asset_id: str) -> Response:
    found = credentials.list_credentials(request_session(), principal(), asset_id)
    return jsonify(
        {"items": [CredentialOut.model_validate(c).model_dump(mode="json") for c in found]}
    )


@bp.delete("/assets/<asset_id>/credentials/<credential_id>")
@endpoint(summary="Revoke a device credential", tag="connectivity", status=204)
def revoke_credential(asset_id: str, credential_id: str) -> Response:
    with transaction() as session:
        credentials.revoke_credential(session, actor(), asset_id, credential_id)
    return Response(status=204)

"""Device credential pages: an asset's credentials, issue (secret shown once), revoke."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for

from outpost.connectivity import credentials
from outpost.inventory import service as inventory
from outpost.web.context import actor, principal, request_session, transaction

bp = Blueprint("connectivity_pages", __name__, template_folder="templates")


@bp.get("/assets/<asset_id>/credentials")
def credentials_page(asset_id: str) -> str:
    session = request_session()
    asset = inventory.get_asset(session, principal(), asset_id)
    found = credentials.list_credentials(session, principal(), asset_id)
    return render_template("connectivity/credentials.html", asset=asset, credentials=found)


@bp.post("/assets/<asset_id>/credentials")
def issue_credential(asset_id: str) -> Response:
    with transaction() as session:
        issued = credentials.issue_credential(session, actor(), asset_id)
        asset = inventory.get_asset(session, principal(), asset_id)
        html = render_template("connectivity/credential_issued.html", asset=asset, issued=issued)
    response = Response(html, status=201, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/assets/<asset_id>/credentials/<credential_id>/revoke")
def revoke_credential(asset_id: str, credential_id: str) -> Response:
    with transaction() as session:
        credentials.revoke_credential(session, actor(), asset_id, credential_id)
    target = url_for(".credentials_page", asset_id=asset_id, notice="credential-revoked")
    return redirect(target, 303)  # type: ignore[return-value]

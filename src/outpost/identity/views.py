"""Identity pages: your API tokens, creating one (its secret shown once) and revoking."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from outpost.errors import BadRequest
from outpost.identity import service
from outpost.identity.schemas import TokenCreate
from outpost.web import forms
from outpost.web.context import actor, principal, transaction

bp = Blueprint("identity", __name__, template_folder="templates")


def _render_list(error: BadRequest | None = None, name: str = "") -> str:
    with transaction() as session:
        tokens = service.list_tokens(session, principal())
        return render_template("identity/token_list.html", tokens=tokens, error=error, name=name)


@bp.get("/tokens")
def tokens() -> str:
    return _render_list()


@bp.post("/tokens")
def create_token() -> Response | tuple[str, int]:
    try:
        body = forms.parse(
            TokenCreate, forms.query_values(request.form, ("name", "expires_in_days"))
        )
        with transaction() as session:
            issued = service.create_token(
                session, actor(), name=body.name, expires_in=body.expires_in
            )
            html = render_template("identity/token_detail.html", issued=issued)
    except BadRequest as exc:
        return _render_list(exc, request.form.get("name", "")), 422
    response = Response(html, status=201, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tokens/<token_id>/revoke")
def revoke_token(token_id: str) -> Response:
    with transaction() as session:
        service.revoke_token(session, actor(), token_id)
    return redirect(url_for(".tokens", notice="token-revoked"), 303)  # type: ignore[return-value]

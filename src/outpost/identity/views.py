"""Identity pages: your API tokens (a new one's secret shown once), your sessions and
your password."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from outpost.errors import BadRequest
from outpost.identity import account, service
from outpost.identity.authz import permissions_of
from outpost.identity.schemas import TokenCreate
from outpost.validation import Violation
from outpost.web import forms
from outpost.web.auth import SESSION_COOKIE
from outpost.web.context import actor, principal, services, transaction

bp = Blueprint("identity", __name__, template_folder="templates")
PASSWORD_FIELDS = ("current", "new", "confirm")


def _render_list(error: BadRequest | None = None, name: str = "") -> str:
    with transaction() as session:
        who = principal()
        tokens = service.list_tokens(session, who)
        return render_template(
            "identity/token_list.html",
            tokens=tokens,
            error=error,
            name=name,
            held=sorted(permissions_of(who)),
            max_days=services().settings.token_max_days,
        )


@bp.get("/tokens")
def tokens() -> str:
    return _render_list()


@bp.post("/tokens")
def create_token() -> Response | tuple[str, int]:
    try:
        fields = forms.query_values(request.form, ("name", "expires_in_days"))
        scoped = request.form.getlist("permissions")
        body = forms.parse(TokenCreate, {**fields, "permissions": scoped or None})
        with transaction() as session:
            issued = service.create_token(
                session,
                actor(),
                name=body.name,
                expires_in=body.expires_in,
                permissions=body.permissions,
                max_lifetime=services().settings.token_max_lifetime,
                web_session_id=g.web_session_id,
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


# --- your account: sessions and password ------------------------------------------------


def _render_account(error: BadRequest | None = None, status: int = 200) -> tuple[str, int]:
    with transaction() as session:
        sessions = account.list_sessions(session, principal())
        html = render_template(
            "identity/account.html",
            sessions=sessions,
            current_session=g.get("web_session_id"),
            errors=forms.split_violations(error.violations, None, PASSWORD_FIELDS)
            if error
            else forms.NO_ERRORS,
        )
    return html, status


@bp.get("/account")
def account_page() -> tuple[str, int]:
    return _render_account()


@bp.post("/account/password")
def change_password() -> Response | tuple[str, int]:
    form = request.form
    if form.get("new", "") != form.get("confirm", ""):
        message = "The two new passwords differ."
        return _render_account(
            BadRequest(message, [Violation("user.password_mismatch", message, "confirm")]), 422
        )
    try:
        with transaction() as session:
            account.change_password(
                session,
                actor(),
                current=form.get("current", ""),
                new=form.get("new", ""),
                keep_session_id=g.get("web_session_id"),
            )
    except BadRequest as exc:
        return _render_account(exc, 422)
    return redirect(url_for(".account_page", notice="password-changed"), 303)  # type: ignore[return-value]


@bp.post("/account/logout-everywhere")
def log_out_everywhere() -> Response:
    with transaction() as session:
        account.log_out_everywhere(session, actor())
    response = redirect(url_for("web.login"), 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response  # type: ignore[return-value]

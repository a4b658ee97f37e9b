"""Health, the OpenAPI document and its rendered docs page, and logging in and out."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
)
from sqlalchemy import text

from outpost.errors import TooManyRequests, Unauthenticated
from outpost.identity import mfa_views, sessions
from outpost.web import auth
from outpost.web.context import actor, request_meta, services, transaction
from outpost.web.forms import local_path
from outpost.web.openapi import document

api_bp = Blueprint("api_meta", __name__, url_prefix="/api/v1")
bp = Blueprint("web", __name__, template_folder="templates")


@api_bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(current_app))


@bp.get("/api/docs")
def api_docs() -> str:
    return render_template("web/api_docs.html", doc=document(current_app))


@bp.get("/health")
def health() -> Response:
    with services().db.unit_of_work(write=False) as session:
        session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    target = local_path(request.values.get("next"))
    if request.method == "GET":
        return render_template("web/login.html", next=target, email="", error=None)
    auth.check_csrf()  # the login form is public, but still CSRF-protected
    email = request.form.get("email", "")
    settings = services().settings
    meta = request_meta()
    try:
        with transaction() as session:
            started = sessions.log_in(
                session,
                email=email,
                password=request.form.get("password", ""),
                meta=meta,
                lifetime=timedelta(hours=settings.session_lifetime_hours),
            )
    except Unauthenticated:
        with transaction() as session:
            sessions.record_failed_login(session, email, meta)
        error = "Wrong email or password."
        return render_template("web/login.html", next=target, email=email, error=error), 401
    except TooManyRequests as exc:
        page = render_template("web/login.html", next=target, email=email, error=exc.detail)
        return Response(page, 429, {"Retry-After": str(exc.retry_after_s)})
    if isinstance(started, sessions.PendingLogin):  # no session before the second factor
        return mfa_views.challenge(started, target)
    response = redirect(target, 303)
    auth.set_session_cookie(response, started.secret)
    return response  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    with transaction() as session:
        sessions.log_out(session, actor(), g.web_session_id)
    response = redirect("/login", 303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response  # type: ignore[return-value]

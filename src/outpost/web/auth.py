"""Authenticate every request before it reaches a handler (Zero Trust).

Only endpoints in ``PUBLIC_ENDPOINTS`` are reachable without a principal. API paths
take ``Authorization: Bearer <token>``; pages take the server-side session cookie.
Forms are protected against CSRF with a double-submit token.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, Response, g, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from outpost.connectivity import credentials
from outpost.errors import BadRequest, Unauthenticated
from outpost.identity import service as identity
from outpost.identity import sessions
from outpost.web.context import SAFE_METHODS, after_session, request_session, services
from outpost.web.text_guard import reject_unstorable_form

log = logging.getLogger(__name__)

SESSION_COOKIE = "outpost_session"
CSRF_COOKIE = "outpost_csrf"
CSRF_FIELD = "csrf_token"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "web.login",
        "mfa.login_step",  # the second login step and forced enrolment: a signed challenge
        "mfa.setup",  # cookie (password already checked), or a session, identifies the user
        "mfa.begin_setup",
        "mfa.confirm_setup",
        "web.health",
        "web.api_docs",
        "api_meta.openapi",
        "files_public.link",
        "files_public.link_download",
        "files_public.use_link",
        "files_public.signed",
        "invitations.invitation",  # an invitation link: holding it is the credential, once
        "invitations.accept",
    }
)


def _request_id() -> str:
    given = request.headers.get("X-Request-Id")
    if given is None:
        return secrets.token_hex(12)
    if not REQUEST_ID.fullmatch(given):
        raise BadRequest("X-Request-Id must be 1-128 characters of letters, digits and . _ : -")
    return given


#: Endpoints that devices call with their credential; they also take a credential the
#: ways InfluxDB clients send one (``Token`` scheme, basic-auth password, ``p``).
INGESTION_ENDPOINTS = frozenset(
    {"telemetry_ingest.write_json", "telemetry_ingest.write_line_protocol"}
)


def _bearer() -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("Use Authorization: Bearer <token>.")
    return value.strip()


def authenticate() -> None:
    g.request_id = "-"
    g.request_id = _request_id()
    g.principal = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        _optional_session()
    elif request.endpoint in INGESTION_ENDPOINTS:
        _authenticate_sender()
    elif request.path.startswith("/api/"):
        _authenticate_token()
    else:
        _authenticate_session(required=True)
        check_csrf()
    reject_unstorable_form()


def _ingestion_secret() -> str | None:
    """``Authorization: Bearer|Token <secret>``, basic auth with the secret as password,
    or the ``p`` query parameter (InfluxDB v1 clients)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() in {"bearer", "token"} and value.strip():
            return value.strip()
        if scheme.lower() == "basic" and request.authorization is not None:
            return request.authorization.password or None
        raise Unauthenticated("Use Authorization: Bearer <credential> (or Token, or basic auth).")
    return request.args.get("p") or None


def _authenticate_sender() -> None:
    secret = _ingestion_secret()
    if secret is None:
        raise Unauthenticated("Send a device credential or API token: Authorization: Bearer ….")
    if credentials.is_device_secret(secret):
        g.device = credentials.authenticate_device(request_session(), secret)
    else:
        _authenticate_token(secret)


def _authenticate_token(secret: str | None = None) -> None:
    secret = secret or _bearer()
    if secret is None:
        raise Unauthenticated("Send an API token: Authorization: Bearer <token>.")
    principal, stale = identity.authenticate_token(request_session(), secret)
    if stale and principal.token_id:
        token_id = principal.token_id
        after_session(lambda: _record_use(identity.touch_token, token_id))
    g.principal = principal


def _authenticate_session(*, required: bool) -> None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        if required:
            raise Unauthenticated("Log in first.")
        return
    idle = timedelta(minutes=services().settings.session_idle_minutes)
    try:
        principal, session_id, stale = sessions.resolve_session(
            request_session(), secret, idle=idle
        )
    except Unauthenticated:
        if required:
            raise
        return
    if stale:
        after_session(lambda: _record_use(sessions.touch_session, session_id))
    g.principal = principal
    g.web_session_id = session_id


def _record_use(touch: Callable[[Session, str], None], object_id: str) -> None:
    """Refresh a last-used time in its own short transaction, after the request's."""
    try:
        with services().db.unit_of_work(write=True) as session:
            touch(session, object_id)
    except OperationalError:  # bookkeeping only: never fail a request over it
        log.warning("could not record the last use of %s", object_id)


def _optional_session() -> None:
    if not request.path.startswith("/api/"):
        _authenticate_session(required=False)


def set_session_cookie(response: BaseResponse, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="Lax",
        secure=services().settings.cookie_secure,
        path="/",
    )


def csrf_token() -> str:
    """The token forms must echo; minted into a cookie on first use."""
    token: str | None = getattr(g, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        g.csrf_token = token
    return token


def check_csrf() -> None:
    """A form post must echo the CSRF cookie in its ``csrf_token`` field."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie, sent):
        raise BadRequest("The form's security token is missing or stale; reload the page.")


def finish(response: Response) -> Response:
    """Echo the request id, set the CSRF cookie and security headers."""
    response.headers["X-Request-Id"] = getattr(g, "request_id", "-")
    token = getattr(g, "csrf_token", None)
    if token is not None and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=services().settings.cookie_secure,
        )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    if services().settings.cookie_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_app(app: Flask) -> None:
    app.before_request(authenticate)
    app.after_request(finish)
    app.jinja_env.globals["csrf_token"] = csrf_token

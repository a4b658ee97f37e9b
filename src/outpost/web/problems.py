"""Map domain errors to HTTP once, and render RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from outpost import errors
from outpost.validation import Violation

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:outpost:problem:{}"
MEDIA_TYPE = "application/problem+json"

STATUS: dict[type[errors.OutpostError], int] = {
    errors.BadRequest: 400,
    errors.Unauthenticated: 401,
    errors.MfaRequired: 403,  # authenticated, but a fresh second factor is needed; pages
    # get the confirm form instead (identity.mfa_views registers that handler)
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RuleViolation: 422,
    errors.PreconditionRequired: 428,
    errors.TooManyRequests: 429,
    errors.ServiceUnavailable: 503,
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    violations: list[Violation] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": getattr(g, "request_id", None),
    }
    if violations is not None:
        body["errors"] = [v.as_dict() for v in violations]
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="outpost"'
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/")


def status_of(exc: errors.OutpostError) -> int:
    return next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 500)


def _domain_error(exc: errors.OutpostError) -> Response:
    status = status_of(exc)
    if not wants_json():
        response = _html_error(status, exc.title, exc.detail)
    else:
        extra: dict[str, Any] = {}
        if isinstance(exc, errors.PreconditionFailed):
            extra["current"] = exc.current
        response = problem(
            status, exc.type_slug, exc.title, exc.detail, getattr(exc, "violations", None), **extra
        )
        if isinstance(exc, errors.PreconditionFailed):
            response.headers["ETag"] = f'"{exc.revision}"'
    if isinstance(exc, errors.TooManyRequests | errors.ServiceUnavailable):  # pages and API
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _integrity_error(exc: IntegrityError) -> Response:
    log.info("integrity error mapped to 409: %s", type(exc.orig).__name__)
    detail = "The change collides with another one (a unique value is already taken)."
    if not wants_json():
        return _html_error(409, "Conflict", detail)
    return problem(409, "conflict", "Conflict", detail)


def _operational_error(exc: OperationalError) -> Response:
    message = str(exc.orig).lower()
    if any(word in message for word in ("deadlock", "could not serialize", "locked", "busy")):
        detail = "The change raced with another one; retry it."
        if not wants_json():
            return _html_error(409, "Conflict", detail)
        return problem(409, "conflict-retry", "Conflict", detail)
    raise exc


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if not wants_json():
        return _html_error(status, exc.name, exc.description or exc.name)
    slug = exc.name.lower().replace(" ", "-")
    response = problem(status, slug, exc.name, exc.description or exc.name)
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not wants_json():
        return _html_error(500, "Internal error", "Something went wrong on our side.")
    return problem(500, "internal", "Internal error", "Something went wrong on our side.")


def _html_error(status: int, title: str, detail: str) -> Response:
    if status == 401:
        return redirect(url_for("web.login", next=request.full_path))  # type: ignore[return-value]
    html = render_template("web/error.html", status=status, title=title, detail=detail)
    return Response(html, status=status, mimetype="text/html")


def init_app(app: Flask) -> None:
    app.register_error_handler(errors.OutpostError, _domain_error)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(OperationalError, _operational_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)

"""JSON responses the API handlers share: an ``ETag`` from a revision, a 201 for a new
object, and ``no-store`` for a body that holds a secret shown once."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


def with_etag(body: dict[str, Any], revision: int, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["ETag"] = f'"{revision}"'
    return response


def created(body: dict[str, Any], *, holds_secret: bool = False) -> Response:
    """201 with ``body``; one that holds a secret (a token, a link) is never cached."""
    response = jsonify(body)
    response.status_code = 201
    if holds_secret:
        response.headers["Cache-Control"] = "no-store"
    return response

"""Request body limits: small by default, large only where an endpoint says so.

Every request may send ``OUTPOST_MAX_BODY_BYTES``; an endpoint marked ``@large_body``
(file uploads) may send up to the file size limit plus room for form fields. The
limit is applied before anything reads the body, so an oversized request is a 413
as soon as its ``Content-Length`` is known, and a chunked one stops at the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request

from outpost.web.context import services

F = TypeVar("F", bound=Callable[..., Any])
LARGE_BODY_ATTRIBUTE = "_outpost_large_body"
FORM_OVERHEAD_BYTES = 1024 * 1024


def large_body(func: F) -> F:
    setattr(func, LARGE_BODY_ATTRIBUTE, True)
    return func


def _apply_limit() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, LARGE_BODY_ATTRIBUTE, False):
        limit = services().settings.file_max_bytes + FORM_OVERHEAD_BYTES
        request.max_content_length = limit
        request.max_form_memory_size = FORM_OVERHEAD_BYTES


def init_app(app: Flask) -> None:
    app.before_request(_apply_limit)

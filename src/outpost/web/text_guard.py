"""Text the databases cannot store is refused at the edge, with a 400, never a 500.

JSON bodies must be UTF-8, without NaN/Infinity (JSON has no such numbers; Python's
parser accepts them), without NUL characters (PostgreSQL text and jsonb refuse them)
and without lone surrogates (no encoding can store them). The same holds for the
path, the query string and form fields.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request

from outpost.errors import BadRequest
from outpost.validation import Violation

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number; send a finite number or null.")


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (invalid Unicode)"
    return None


def first_unstorable(value: Any) -> tuple[str, str] | None:
    """The path and reason of the first string (value or key) that cannot be stored."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            reason = unstorable(item)
            if reason:
                return path or "$", reason
        elif isinstance(item, dict):
            for key, child in item.items():
                reason = unstorable(key)
                if reason:
                    return f"{path}.{key!r}".lstrip("."), f"a key {reason}"
                stack.append((f"{path}.{key}".lstrip("."), child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return None


def load_json(raw: bytes, what: str = "The request body") -> Any:
    """Parse JSON that every database can store; ``what`` names it in error messages."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{what} is not UTF-8 JSON.") from exc
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"{what} is not valid JSON.") from exc
    found = first_unstorable(payload)
    if found is not None:
        path, reason = found
        raise BadRequest(
            f"The value at {path} {reason}.", [Violation("text.unstorable", reason, path)]
        )
    return payload


def _check(source: str, values: Any) -> None:
    for key, value in values.items(multi=True):
        if key is None:  # a multipart part without a name
            raise BadRequest(f"A {source} part has no name.")
        reason = unstorable(key) or unstorable(value)
        if reason:
            raise BadRequest(f"The {source} parameter {key!r} {reason}.")


def reject_unstorable_text() -> None:
    """Before every request: the path and query string must be storable."""
    reason = unstorable(request.path)
    if reason:
        raise BadRequest(f"The URL path {reason}.")
    _check("query", request.args)


def reject_unstorable_form() -> None:
    """Form fields must be storable. Called once the request is authenticated, so a
    large multipart body is never parsed for a caller who may not send it."""
    if request.mimetype in FORM_TYPES:
        _check("form", request.form)


def init_app(app: Flask) -> None:
    app.before_request(reject_unstorable_text)

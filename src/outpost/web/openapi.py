"""API endpoints declared once: the decorator parses input and documents the route.

``/api/v1/openapi.json`` is built from the app's URL map and these declarations, so
every registered endpoint is in the document and its schemas are the ones enforced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, request
from pydantic import BaseModel, RootModel, ValidationError

from outpost import __version__
from outpost.errors import BadRequest, PreconditionRequired, RuleViolation, UnsupportedMediaType
from outpost.validation import field_violations
from outpost.web.text_guard import load_json

F = TypeVar("F", bound=Callable[..., Any])
JSON_TYPES = ("application/json", "application/merge-patch+json")
SPEC_ATTRIBUTE = "_outpost_api"
DOCUMENT_EXTENSION = "outpost.openapi"


class MergePatch(RootModel[dict[str, Any]]):
    """A JSON merge patch (RFC 7396) document."""


@dataclass(frozen=True)
class ApiSpec:
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    also_status: int | None = None  # a second success status with the same body
    etag: bool = False
    if_match: bool = False
    content_types: tuple[str, ...] = ("application/json",)
    request_body: dict[str, Any] | None = None  # a non-JSON body (file uploads), as OpenAPI
    binary_response: bool = False  # the success response is the file's bytes
    extra_responses: dict[int, str] = field(default_factory=dict)


def endpoint(**options: Any) -> Callable[[F], F]:
    """Declare an API endpoint. Parsed ``body`` and ``query`` are passed as keyword arguments."""
    spec = ApiSpec(**options)

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if spec.query is not None:
                kwargs["query"] = parse_query(spec.query)
            if spec.body is not None:
                kwargs["body"] = parse_body(spec.body)
            return func(*args, **kwargs)

        setattr(wrapper, SPEC_ATTRIBUTE, spec)
        return wrapper  # type: ignore[return-value]

    return decorate


M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M]) -> M:
    mimetype = request.mimetype
    if mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(f"Send JSON (Content-Type: application/json), not {mimetype!r}.")
    payload = load_json(request.get_data(cache=True))
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise RuleViolation(field_violations(exc), "The request body is not valid.") from exc


def parse_query(model: type[M]) -> M:
    values: dict[str, Any] = {}
    for key in request.args:
        items = request.args.getlist(key)
        values[key] = items[0] if len(items) == 1 else items
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise BadRequest("The query parameters are not valid.", field_violations(exc)) from exc


def if_match_revision() -> int:
    """The revision named by ``If-Match``: missing is 428, malformed is 400."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequired(
            'Send If-Match with the ETag you read (e.g. If-Match: "3"); blind writes are refused.'
        )
    match = re.fullmatch(r'\s*"([1-9]\d{0,11})"\s*', header)
    if match is None:
        raise BadRequest('If-Match must be one strong ETag such as "3".')
    return int(match.group(1))


# --- the document -----------------------------------------------------------------------

_PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Violation"}},
    },
    "required": ["type", "title", "status"],
}
_VIOLATION_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "path": {"type": "string"},
        "object_id": {"type": ["string", "null"]},
        "related": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["code", "message", "path", "related"],
}


def document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, built on first use: routes do not change at run time."""
    built: dict[str, Any] | None = app.extensions.get(DOCUMENT_EXTENSION)
    if built is None:
        built = app.extensions[DOCUMENT_EXTENSION] = build_document(app)
    return built


def build_document(app: Flask) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": _PROBLEM_SCHEMA, "Violation": _VIOLATION_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        spec: ApiSpec | None = getattr(app.view_functions[rule.endpoint], SPEC_ATTRIBUTE, None)
        if spec is None:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                spec, rule.arguments, schemas, rule.endpoint, method
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Outpost API", "version": __version__},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(
    spec: ApiSpec, arguments: Any, schemas: dict[str, Any], endpoint_name: str, method: str
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in sorted(arguments)
    ]
    if spec.query is not None:
        query_schema = spec.query.model_json_schema()
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if spec.if_match:
        parameters.append(
            {"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"}}
        )
    parameters.append(
        {
            "name": "X-Request-Id",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 128},
        }
    )
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": "Success"}
    if spec.binary_response:
        success["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    if spec.response is not None:
        success["content"] = {
            ct: {"schema": _ref(spec.response, schemas)} for ct in spec.content_types
        }
    if spec.etag:
        success["headers"] = {
            "ETag": {
                "description": "The revision, to send back in If-Match",
                "schema": {"type": "string"},
            }
        }
    responses[str(spec.status)] = success
    if spec.also_status is not None:
        responses[str(spec.also_status)] = success
    for status, text in {
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        **spec.extra_responses,
    }.items():
        responses[str(status)] = {"description": text, "content": problem}
    if spec.body is not None:
        responses.setdefault("415", {"description": "Not JSON", "content": problem})
        responses.setdefault("422", {"description": "Validation failed", "content": problem})
    if spec.if_match:
        responses["412"] = {"description": "Stale revision", "content": problem}
        responses["428"] = {"description": "If-Match missing", "content": problem}
    operation: dict[str, Any] = {
        "operationId": f"{endpoint_name.replace('.', '_')}_{method.lower()}",
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {ct: {"schema": _ref(spec.body, schemas)} for ct in JSON_TYPES},
        }
    elif spec.request_body is not None:
        operation["requestBody"] = {"required": True, "content": spec.request_body}
    return operation

"""Pure helpers that turn HTML form fields into service input, and service output into rows.

Nothing here touches Flask or the database: each function takes plain mappings and
returns plain values, so every conversion has a unit test without a request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from outpost.errors import BadRequest
from outpost.validation import Violation, field_violations

M = TypeVar("M", bound=BaseModel)

CONFIG_PREFIX = "config."
_INDEX = re.compile(r"\[\d+\]|\.\d+(?=\.|$)")


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One input of a config form, described by an asset type's JSON Schema property."""

    key: str
    kind: str  # "integer", "number", "string", "enum", "boolean" or "array"
    required: bool
    options: tuple[str, ...] = ()
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None

    @property
    def hint(self) -> str:
        """A short help text: the schema's description, else the type and its bounds."""
        if self.description:
            return self.description
        if self.kind == "array":
            return "comma-separated"
        bounds = [f"{self.kind}"]
        if self.minimum is not None:
            bounds.append(f"from {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"to {self.maximum:g}")
        return " ".join(bounds)

    @property
    def name(self) -> str:
        """The form field's name, which is also the violation path it answers to."""
        return CONFIG_PREFIX + self.key


def config_fields(schema: Mapping[str, Any]) -> list[ConfigField]:
    """The form inputs for a config JSON Schema, in the schema's property order."""
    required = set(schema.get("required", []))
    fields = []
    for key, prop in schema.get("properties", {}).items():
        kind = str(prop.get("type", "string"))
        if kind == "array" and prop.get("items", {}).get("type", "string") != "string":
            continue  # only arrays of strings have a text form
        fields.append(
            ConfigField(
                key=key,
                kind="enum" if "enum" in prop else kind,
                required=key in required,
                options=tuple(str(value) for value in prop.get("enum", ())),
                description=str(prop.get("description", "")),
                minimum=prop.get("minimum", prop.get("exclusiveMinimum")),
                maximum=prop.get("maximum", prop.get("exclusiveMaximum")),
            )
        )
    return fields


def enum_value_type(schema: Mapping[str, Any], key: str) -> str:
    prop = schema.get("properties", {}).get(key, {})
    return str(prop.get("type", "string"))


def display_value(value: Any) -> str:
    """A stored config value as the text a form input shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def config_values(config: Mapping[str, Any], fields: Iterable[ConfigField]) -> dict[str, str]:
    """Form field name → displayed text, for every config field."""
    return {field.name: display_value(config.get(field.key)) for field in fields}


def convert(text: str, kind: str) -> Any:
    """Form text → a JSON value of ``kind``; text that does not convert is returned as is.

    Returning the raw string lets the asset type's schema rule report the problem in its
    own words ("'abc' is not of type 'integer'") beside the field, like any other entry
    point would.
    """
    text = text.strip()
    if text == "":
        return None
    if kind in {"integer", "number"}:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number):
            return text
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if kind == "array":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def split_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def asset_patch(
    form: Mapping[str, str], fields: Sequence[ConfigField], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch an asset form asks for: every field it shows, an emptied one as null.

    Values equal to the stored ones change nothing, so the patch needs no current copy.
    """
    config: dict[str, Any] = {}
    for field in fields:
        kind = enum_value_type(schema, field.key) if field.kind == "enum" else field.kind
        config[field.key] = convert(form.get(field.name, ""), kind)
    return {
        "name": form.get("name", "").strip(),
        "serial": form.get("serial", "").strip(),
        "tags": split_tags(form.get("tags", "")),
        "config": config,
    }


SITE_FIELDS = ("name", "timezone", "grid_connection_kw", "address")


def site_patch(form: Mapping[str, str]) -> dict[str, Any]:
    """The merge patch of a site form; an empty optional field removes the value."""
    patch: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "timezone": form.get("timezone", "").strip(),
    }
    patch["grid_connection_kw"] = convert(form.get("grid_connection_kw", ""), "number")
    address = form.get("address", "").strip()
    patch["address"] = address or None
    return patch


def site_values(site: Mapping[str, Any]) -> dict[str, str]:
    return {key: display_value(site.get(key)) for key in SITE_FIELDS}


def field_of(path: str) -> str:
    """The form field a violation path points at: ``config.zones[1]`` → ``config.zones``."""
    path = path.removeprefix("patch.")
    return _INDEX.sub("", path)


@dataclass(frozen=True)
class FormErrors:
    """Violations split into those shown beside a field and those listed at the top."""

    by_field: dict[str, list[Violation]]
    summary: list[Violation]

    def __bool__(self) -> bool:
        return bool(self.by_field or self.summary)

    def all(self) -> list[Violation]:
        return [*self.summary, *(v for found in self.by_field.values() for v in found)]


def split_violations(
    violations: Iterable[Violation], object_id: str | None, field_names: Iterable[str]
) -> FormErrors:
    """Each violation about this object's form fields goes beside that field; others on top."""
    names = set(field_names)
    by_field: dict[str, list[Violation]] = {}
    summary: list[Violation] = []
    for violation in violations:
        name = field_of(violation.path)
        mine = violation.object_id in {None, object_id}
        if mine and name in names:
            by_field.setdefault(name, []).append(violation)
        else:
            summary.append(violation)
    return FormErrors(by_field, summary)


NO_ERRORS = FormErrors({}, [])


# --- showing changes --------------------------------------------------------------------


def flatten(data: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys: ``{"config": {"ip": x}}`` → ``{"config.ip": x}``."""
    flat: dict[str, Any] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    before: str
    after: str


def changes(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    skip: Iterable[str] = ("revision",),
) -> list[Change]:
    """The keys whose values differ, flattened, with both values as display text."""
    old, new = flatten(before), flatten(after)
    hidden = set(skip)
    rows = []
    for key in sorted(set(old) | set(new)):
        if key in hidden or (key in old and key in new and old[key] == new[key]):
            continue
        rows.append(Change(key, _shown(old, key), _shown(new, key)))
    return rows


def _shown(values: Mapping[str, Any], key: str) -> str:
    if key not in values or values[key] is None:
        return "—"
    value = values[key]
    if value == {} or value == []:
        return "(empty)"
    return display_value(value)


# --- other inputs -----------------------------------------------------------------------


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/``: no open redirects."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 32 for char in target)
    ):
        return "/"
    return target


def revision(form: Mapping[str, str]) -> int:
    """The revision a form was read at, which its write must name (If-Match for pages)."""
    text = form.get("revision", "")
    if not text.isdigit():
        raise BadRequest("The form lacks the revision it was read at; reload the page.")
    return int(text)


def parse(model: type[M], data: Mapping[str, Any]) -> M:
    """Validate form or query input; problems are a 400 listing each field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = field_violations(exc)
        raise BadRequest(
            "Some fields are not valid: " + "; ".join(f"{v.path}: {v.message}" for v in problems),
            problems,
        ) from exc


def query_values(args: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The non-empty ones among ``names`` in a query string, stripped."""
    return {name: args[name].strip() for name in names if args.get(name, "").strip()}


def utc_text(text: str) -> str:
    """An ISO date or date-time; one without an offset is read as UTC."""
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # let the schema report it
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()

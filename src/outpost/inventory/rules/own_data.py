"""Rules about an asset's own data (its type, its config schema, its subnet).

They look at ``state.changed`` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Final

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from outpost.inventory.catalogue import get_type
from outpost.inventory.rules._helpers import _changed, _describe, _host, _network, _str
from outpost.inventory.state import AssetState, ProposedState
from outpost.validation import Violation


def check_asset_type(state: ProposedState) -> Iterator[Violation]:
    """A changed asset's type is in the catalogue."""
    for asset in _changed(state):
        if get_type(asset.type) is None:
            yield Violation(
                "type.unknown",
                f"Unknown asset type {asset.type!r} for {asset.name or asset.id}",
                "type",
                asset.id,
            )


def _check_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


_FORMAT_CHECKER: Final = FormatChecker(["ipv4"])
_FORMAT_CHECKER.checks("date-time")(_check_date_time)


@cache
def _validator(type_key: str) -> Draft202012Validator:
    """The compiled validator for one type's config schema, built once per type."""
    asset_type = get_type(type_key)
    schema = asset_type.config_schema if asset_type else {}
    return Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)


def _config_path(parts: Iterable[str | int]) -> str:
    path = "config"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _schema_message(error: ValidationError) -> str:
    """jsonschema's message, except for formats and patterns, which read better described."""
    if error.validator not in ("format", "pattern") or not isinstance(error.schema, Mapping):
        return error.message
    expected = error.schema.get("description") or f"a valid {error.schema.get('format')}"
    return f"{error.instance!r} is not {expected}"


def _schema_violations(asset: AssetState, error: ValidationError) -> Iterator[Violation]:
    """One violation per offending field (required and additional properties are split)."""
    where = list(error.absolute_path)
    instance = error.instance
    required = error.validator_value if error.validator == "required" else None
    if isinstance(required, list) and isinstance(instance, Mapping):
        # jsonschema yields one error per missing key; report the key it names.
        for key in required:
            if key not in instance and repr(key) in error.message:
                yield Violation(
                    "config.schema",
                    f"{key!r} is required",
                    _config_path([*where, key]),
                    asset.id,
                )
                return
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        extras = [k for k in instance if k not in known]
        for key in extras:
            yield Violation(
                "config.schema",
                f"{key!r} is not a known setting",
                _config_path([*where, str(key)]),
                asset.id,
            )
        if extras:
            return
    yield Violation("config.schema", _schema_message(error), _config_path(where), asset.id)


def _is_ipv4(value: object) -> bool:
    return _FORMAT_CHECKER.conforms(value, "ipv4")


@cache
def _fast_check(type_key: str) -> Callable[[Any], Any]:
    """A compiled yes/no check for the common, valid case; jsonschema lists the errors."""
    asset_type = get_type(type_key)
    schema = dict(asset_type.config_schema if asset_type else {})
    schema.pop("$schema", None)
    check: Callable[[Any], Any] = fastjsonschema.compile(
        schema, formats={"ipv4": _is_ipv4, "date-time": _check_date_time}
    )
    return check


def _conforms(type_key: str, config: Mapping[str, Any]) -> bool:
    try:
        _fast_check(type_key)(config)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _non_finite(asset: AssetState) -> Iterator[Violation]:
    """NaN and infinities: JSON has no such numbers, and schema bounds let NaN through."""
    stack: list[tuple[list[str | int], Any]] = [([], asset.config)]
    while stack:
        parts, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield Violation(
                "config.schema", f"{value} is not a finite number", _config_path(parts), asset.id
            )
        elif isinstance(value, Mapping):
            stack.extend(([*parts, str(key)], child) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend(([*parts, index], child) for index, child in enumerate(value))


def check_config_schema(state: ProposedState) -> Iterator[Violation]:
    """A changed asset's config matches its type's JSON Schema, with finite numbers only."""
    for asset in _changed(state):
        if get_type(asset.type) is None:
            continue
        yield from _non_finite(asset)
        if _conforms(asset.type, asset.config):
            continue
        errors = _validator(asset.type).iter_errors(asset.config)
        for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
            yield from _schema_violations(asset, error)


def check_subnet(state: ProposedState) -> Iterator[Violation]:
    """A changed asset's subnet is a network address, with no host bits set."""
    for asset in _changed(state):
        asset_type = get_type(asset.type)
        key = asset_type.subnet_key if asset_type else None
        value = _str(asset, key)
        network = _network(asset, key)
        if value is None or network is None or network.network_address == _host(value):
            continue
        yield Violation(
            "ip.invalid_subnet",
            f"Subnet {value} of {_describe(asset)} has host bits set; did you mean {network}?",
            f"config.{key}",
            asset.id,
        )

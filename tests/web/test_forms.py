"""Form ↔ service conversions, without a request or a database."""

from __future__ import annotations

import pytest

from outpost.errors import BadRequest
from outpost.identity.schemas import TokenCreate
from outpost.inventory.catalogue import CATALOGUE
from outpost.validation import Violation
from outpost.web import forms

SENSOR = dict(CATALOGUE["sensor"].config_schema)
METER = dict(CATALOGUE["meter"].config_schema)
BADGE = dict(CATALOGUE["badge"].config_schema)


def test_config_fields_follow_the_schema():
    fields = {f.key: f for f in forms.config_fields(SENSOR)}
    assert list(fields) == ["channel", "kind", "unit", "sampling_interval_s"]
    assert fields["channel"].kind == "integer" and fields["channel"].required
    assert fields["channel"].hint == "integer from 0"
    assert fields["kind"].kind == "enum" and "temperature" in fields["kind"].options
    assert fields["channel"].name == "config.channel"
    badge = {f.key: f for f in forms.config_fields(BADGE)}
    assert badge["zones"].kind == "array" and not badge["valid_until"].required
    assert "UTC offset" in badge["valid_until"].hint


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("12", "integer", 12),
        (" 12 ", "integer", 12),
        ("12.0", "integer", 12),
        ("12.5", "integer", 12.5),
        ("abc", "integer", "abc"),
        ("2.5", "number", 2.5),
        ("4", "number", 4),
        ("x1", "number", "x1"),
        ("nan", "number", "nan"),
        ("inf", "integer", "inf"),
        ("-Infinity", "number", "-Infinity"),
        ("", "integer", None),
        ("  ", "string", None),
        ("true", "boolean", True),
        ("False", "boolean", False),
        ("maybe", "boolean", "maybe"),
        ("a, b,,c ", "array", ["a", "b", "c"]),
        ("degC", "string", "degC"),
    ],
)
def test_convert(text, kind, expected):
    value = forms.convert(text, kind)
    assert value == expected and type(value) is type(expected)


def test_asset_patch_converts_by_schema_and_nulls_empty_fields():
    fields = forms.config_fields(METER)
    form = {
        "name": " Meter 1 ",
        "serial": "M1",
        "tags": "roof, north",
        "config.modbus_address": "7",
        "config.ct_ratio": "",
        "config.phases": "3",
    }
    patch = forms.asset_patch(form, fields, METER)
    assert patch == {
        "name": "Meter 1",
        "serial": "M1",
        "tags": ["roof", "north"],
        "config": {"modbus_address": 7, "ct_ratio": None, "phases": 3},
    }


def test_asset_patch_keeps_unconvertible_text_for_the_schema_rule():
    patch = forms.asset_patch({"config.channel": "one"}, forms.config_fields(SENSOR), SENSOR)
    assert patch["config"]["channel"] == "one"
    assert patch["config"]["unit"] is None


def test_config_values_round_trip():
    fields = forms.config_fields(BADGE)
    values = forms.config_values({"holder": "Ann", "zones": ["lobby", "lab"]}, fields)
    assert values == {
        "config.holder": "Ann",
        "config.zones": "lobby, lab",
        "config.valid_until": "",
    }
    assert forms.asset_patch(values, fields, BADGE)["config"]["zones"] == ["lobby", "lab"]


def test_site_patch():
    patch = forms.site_patch(
        {"name": " P ", "timezone": "UTC", "grid_connection_kw": "1.5e3", "address": " "}
    )
    assert patch == {"name": "P", "timezone": "UTC", "grid_connection_kw": 1500, "address": None}
    assert forms.site_patch({"grid_connection_kw": "lots"})["grid_connection_kw"] == "lots"
    assert forms.site_patch({})["grid_connection_kw"] is None


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("config.channel", "config.channel"),
        ("config.zones[1]", "config.zones"),
        ("tags.0", "tags"),
        ("name", "name"),
        ("patch.config.ip", "config.ip"),
        ("", ""),
    ],
)
def test_field_of(path, field):
    assert forms.field_of(path) == field


def test_split_violations():
    mine = Violation("config.schema", "bad channel", "config.channel", "ast_1")
    unnamed = Violation("field.invalid", "too long", "name")
    elsewhere = Violation("sensor.sampling", "too slow", "config.sampling_interval_s", "ast_2")
    unknown_field = Violation("config.schema", "'x' is not a known setting", "config.x", "ast_1")
    errors = forms.split_violations(
        [mine, unnamed, elsewhere, unknown_field], "ast_1", ["config.channel", "name"]
    )
    messages = {name: [v.message for v in found] for name, found in errors.by_field.items()}
    assert messages == {"config.channel": ["bad channel"], "name": ["too long"]}
    assert errors.summary == [elsewhere, unknown_field]
    assert errors and not forms.NO_ERRORS


def test_changes_flattens_and_keeps_only_differences():
    before = {"name": "a", "revision": 1, "config": {"ip": "10.0.0.1", "channel": 1}, "tags": []}
    after = {"name": "a", "revision": 2, "config": {"channel": 2, "unit": "K"}, "tags": ["x"]}
    rows = forms.changes(before, after)
    assert rows == [
        forms.Change("config.channel", "1", "2"),
        forms.Change("config.ip", "10.0.0.1", "—"),
        forms.Change("config.unit", "—", "K"),
        forms.Change("tags", "(empty)", "x"),
    ]
    assert [c.key for c in forms.changes(None, {"name": "n"})] == ["name"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/sites/1?x=2", "/sites/1?x=2"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/a\r\nSet-Cookie: x", "/"),
    ],
)
def test_local_path(target, expected):
    assert forms.local_path(target) == expected


def test_utc_text():
    assert forms.utc_text("2025-01-02") == "2025-01-02T00:00:00+00:00"
    assert forms.utc_text("2025-01-02T10:00Z") == "2025-01-02T10:00:00+00:00"
    assert forms.utc_text("2025-01-02T10:00+02:00") == "2025-01-02T10:00:00+02:00"
    assert forms.utc_text("soon") == "soon"


def test_query_values_and_parse():
    assert forms.query_values({"a": " x ", "b": "", "c": "y"}, ("a", "b")) == {"a": "x"}
    assert forms.parse(TokenCreate, {"name": "t"}).name == "t"
    with pytest.raises(BadRequest) as caught:
        forms.parse(TokenCreate, {"name": "", "expires_in_days": "0"})
    assert {v.path for v in caught.value.violations} == {"name", "expires_in_days"}

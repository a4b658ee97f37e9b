"""Table-driven tests for the inventory rules: pure, no database."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from outpost.inventory.catalogue import CATALOGUE, get_type
from outpost.inventory.rules import RULES, check_all, check_config_schema
from outpost.inventory.state import AssetState, ProposedState, SiteState
from outpost.validation import Violation

# --- A tiny builder ----------------------------------------------------------------------

Assets = dict[str, AssetState]
Edit = Callable[[Assets], None]


def make(
    asset_id: str, type_: str, parent: str | None = None, site: str = "s1", **config: Any
) -> AssetState:
    return AssetState(
        id=asset_id,
        site_id=site,
        type=type_,
        parent_id=parent,
        name=asset_id.upper(),
        serial=f"SN-{asset_id}",
        config=config,
    )


def valid_site() -> Assets:
    """One of every shipped type, all valid together."""
    assets = [
        make(
            "gw-1",
            "gateway",
            ip="10.0.0.1",
            subnet="10.0.0.0/24",
            upload_interval_s=60,
            max_controllers=2,
            max_bus_devices=4,
            firmware="2.4.1",
        ),
        make("ctl-1", "controller", "gw-1", channels=8, ip="10.0.0.2"),
        make(
            "sen-1",
            "sensor",
            "ctl-1",
            channel=0,
            kind="temperature",
            unit="°C",
            sampling_interval_s=30,
        ),
        make("rdr-1", "badge_reader", "ctl-1", channel=1, door="Front door", zone="lobby"),
        make("met-1", "meter", "gw-1", modbus_address=1, ct_ratio=100, phases=3),
        make("inv-1", "inverter", "gw-1", modbus_address=2, rated_power_kw=50.0),
        make("bdg-1", "badge", holder="Ada", zones=["lobby"], valid_until="2030-01-01T00:00:00Z"),
    ]
    return {a.id: a for a in assets}


def config(asset_id: str, *, drop: tuple[str, ...] = (), **changes: Any) -> Edit:
    """Change (or drop) config keys of one asset."""

    def edit(assets: Assets) -> None:
        old = assets[asset_id]
        new = {k: v for k, v in {**old.config, **changes}.items() if k not in drop}
        assets[asset_id] = replace(old, config=new)

    return edit


def move(asset_id: str, *, parent: str | None = None, site: str | None = None) -> Edit:
    def edit(assets: Assets) -> None:
        old = assets[asset_id]
        assets[asset_id] = replace(old, parent_id=parent, site_id=site or old.site_id)

    return edit


def add(asset_id: str, type_: str, parent: str | None = None, **kwargs: Any) -> Edit:
    def edit(assets: Assets) -> None:
        assets[asset_id] = make(asset_id, type_, parent, **kwargs)

    return edit


def delete(asset_id: str) -> Edit:
    def edit(assets: Assets) -> None:
        del assets[asset_id]

    return edit


def build(
    assets: Mapping[str, AssetState],
    *,
    grid_kw: float | None = 100.0,
    changed: set[str] | None = None,
) -> ProposedState:
    sites = {
        "s1": SiteState("s1", "NORTH", grid_connection_kw=grid_kw),
        "s2": SiteState("s2", "SOUTH"),
    }
    ids = set(assets) if changed is None else changed
    return ProposedState(sites=sites, assets=dict(assets), changed=frozenset(ids))


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[Edit, ...]
    expected: frozenset[tuple[str, str, str]] = frozenset()
    grid_kw: float | None = 100.0
    changed: tuple[str, ...] | None = None  # None: the ids the edits touch
    related: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def run(case: Case) -> list[Violation]:
    """Apply the edits to the valid site; by default the write changes what they touched."""
    before = valid_site()
    assets = dict(before)
    for edit in case.edits:
        edit(assets)
    touched = {i for i, a in assets.items() if before.get(i) != a}
    changed = touched if case.changed is None else set(case.changed)
    return check_all(build(assets, grid_kw=case.grid_kw, changed=changed))


def V(code: str, object_id: str, path: str) -> tuple[str, str, str]:
    return (code, object_id, path)


GW2 = add(
    "gw-2",
    "gateway",
    ip="10.0.1.1",
    subnet="10.0.1.0/24",
    upload_interval_s=60,
    max_controllers=1,
    max_bus_devices=1,
)

CASES = [
    # type.unknown
    Case("known types", ()),
    Case("unknown type", (add("x-1", "toaster"),), frozenset({V("type.unknown", "x-1", "type")})),
    # config.schema
    Case(
        "optional keys absent",
        (config("gw-1", drop=("firmware",)), config("bdg-1", drop=("valid_until",))),
    ),
    Case(
        "NaN passes schema bounds but is refused",
        (config("met-1", ct_ratio=float("nan")),),
        frozenset({V("config.schema", "met-1", "config.ct_ratio")}),
    ),
    Case(
        "infinity is refused",
        (config("inv-1", rated_power_kw=float("inf")),),
        frozenset({V("config.schema", "inv-1", "config.rated_power_kw")}),
    ),
    Case(
        "enum",
        (config("sen-1", kind="smell"),),
        frozenset({V("config.schema", "sen-1", "config.kind")}),
    ),
    Case(
        "below minimum",
        (config("ctl-1", channels=0),),
        frozenset(
            {
                V("config.schema", "ctl-1", "config.channels"),
                V("channel.out_of_range", "ctl-1", "config.channels"),
            }
        ),
    ),
    Case(
        "missing required",
        (config("sen-1", drop=("unit",)),),
        frozenset({V("config.schema", "sen-1", "config.unit")}),
    ),
    Case(
        "unknown key",
        (config("met-1", colour="red"),),
        frozenset({V("config.schema", "met-1", "config.colour")}),
    ),
    Case(
        "array item",
        (config("bdg-1", zones=["lobby", 3]),),
        frozenset({V("config.schema", "bdg-1", "config.zones[1]")}),
    ),
    Case(
        "non-unique zones",
        (config("bdg-1", zones=["lobby", "lobby"]),),
        frozenset({V("config.schema", "bdg-1", "config.zones")}),
    ),
    Case(
        "ipv4 format",
        (config("ctl-1", ip="10.0.0.256"),),
        frozenset({V("config.schema", "ctl-1", "config.ip")}),
    ),
    Case(
        "cidr pattern",
        (config("gw-1", subnet="10.0.0.0/33"),),
        frozenset({V("config.schema", "gw-1", "config.subnet")}),
    ),
    Case(
        "naive date-time",
        (config("bdg-1", valid_until="2030-01-01T00:00:00"),),
        frozenset({V("config.schema", "bdg-1", "config.valid_until")}),
    ),
    Case("phases 1", (config("met-1", phases=1),)),
    Case(
        "phases 2",
        (config("met-1", phases=2),),
        frozenset({V("config.schema", "met-1", "config.phases")}),
    ),
    Case(
        "boolean is not an integer",
        (config("met-1", modbus_address=False),),
        frozenset({V("config.schema", "met-1", "config.modbus_address")}),
    ),
    Case(
        "unchanged assets are not schema-checked",
        (config("sen-1", kind="smell"),),
        changed=("gw-1",),
    ),
    # ip.invalid_subnet
    Case(
        "host bits in subnet",
        (config("gw-1", subnet="10.0.0.1/24"),),
        frozenset({V("ip.invalid_subnet", "gw-1", "config.subnet")}),
    ),
    # parent.*
    Case(
        "parent required",
        (move("ctl-1", parent=None),),
        frozenset({V("parent.required", "ctl-1", "parent_id")}),
    ),
    Case(
        "root type with a parent",
        (move("bdg-1", parent="gw-1"),),
        frozenset({V("parent.not_allowed", "bdg-1", "parent_id")}),
        related={"bdg-1": ("gw-1",)},
    ),
    Case(
        "parent of the wrong type",
        (move("sen-1", parent="gw-1"),),
        frozenset({V("parent.not_allowed", "sen-1", "parent_id")}),
    ),
    Case(
        "parent missing",
        (move("sen-1", parent="ghost"),),
        frozenset({V("parent.missing", "sen-1", "parent_id")}),
    ),
    Case(
        "deleting a parent orphans its children",
        (delete("gw-1"),),
        frozenset(
            {
                V("parent.missing", "ctl-1", "parent_id"),
                V("parent.missing", "met-1", "parent_id"),
                V("parent.missing", "inv-1", "parent_id"),
            }
        ),
    ),
    Case(
        "parent on another site",
        (move("sen-1", parent="ctl-1", site="s2"),),
        frozenset({V("parent.other_site", "sen-1", "parent_id")}),
        related={"sen-1": ("ctl-1",)},
    ),
    Case(
        "two-asset cycle",
        (move("ctl-1", parent="sen-1"),),
        frozenset(
            {
                V("parent.not_allowed", "ctl-1", "parent_id"),
                V("parent.cycle", "ctl-1", "parent_id"),
                V("parent.cycle", "sen-1", "parent_id"),
            }
        ),
        related={"sen-1": ("ctl-1",)},
    ),
    Case(
        "self parent",
        (move("gw-1", parent="gw-1"),),
        frozenset(
            {V("parent.not_allowed", "gw-1", "parent_id"), V("parent.cycle", "gw-1", "parent_id")}
        ),
    ),
    # gateway capacities
    Case("controllers at the limit", (add("ctl-2", "controller", "gw-1", channels=4),)),
    Case(
        "too many controllers",
        (
            add("ctl-2", "controller", "gw-1", channels=4),
            add("ctl-3", "controller", "gw-1", channels=4),
        ),
        frozenset({V("gateway.controllers_exceeded", "gw-1", "config.max_controllers")}),
        related={"gw-1": ("ctl-1", "ctl-2", "ctl-3")},
    ),
    Case(
        "lowering max_controllers below the count",
        (config("gw-1", max_controllers=0),),
        frozenset({V("gateway.controllers_exceeded", "gw-1", "config.max_controllers")}),
    ),
    Case(
        "lowering max_bus_devices below the count",
        (config("gw-1", max_bus_devices=1),),
        frozenset({V("gateway.bus_devices_exceeded", "gw-1", "config.max_bus_devices")}),
        related={"gw-1": ("met-1", "inv-1")},
    ),
    Case(
        "bus devices at the limit",
        (GW2, add("met-2", "meter", "gw-2", modbus_address=1, ct_ratio=1, phases=1)),
    ),
    Case(
        "adding a bus device over the limit",
        (
            GW2,
            add("met-2", "meter", "gw-2", modbus_address=1, ct_ratio=1, phases=1),
            add("met-3", "meter", "gw-2", modbus_address=2, ct_ratio=1, phases=1),
        ),
        frozenset({V("gateway.bus_devices_exceeded", "gw-2", "config.max_bus_devices")}),
    ),
    # modbus
    Case(
        "same address on another gateway",
        (GW2, add("met-2", "meter", "gw-2", modbus_address=1, ct_ratio=1, phases=1)),
    ),
    Case(
        "address taken",
        (config("inv-1", modbus_address=1),),
        frozenset(
            {
                V("modbus.address_taken", "inv-1", "config.modbus_address"),
                V("modbus.address_taken", "met-1", "config.modbus_address"),
            }
        ),
        related={"inv-1": ("met-1",), "met-1": ("inv-1",)},
    ),
    # channels
    Case("last channel", (config("sen-1", channel=7),)),
    Case(
        "channel out of range",
        (config("sen-1", channel=8),),
        frozenset({V("channel.out_of_range", "sen-1", "config.channel")}),
        related={"sen-1": ("ctl-1",)},
    ),
    Case(
        "shrinking channels below a used channel",
        (config("ctl-1", channels=1),),
        frozenset({V("channel.out_of_range", "ctl-1", "config.channels")}),
        related={"ctl-1": ("rdr-1",)},
    ),
    Case(
        "channel taken",
        (config("rdr-1", channel=0),),
        frozenset(
            {
                V("channel.taken", "rdr-1", "config.channel"),
                V("channel.taken", "sen-1", "config.channel"),
            }
        ),
        related={"rdr-1": ("sen-1",), "sen-1": ("rdr-1",)},
    ),
    # ip
    Case(
        "same ip on another site",
        (
            add(
                "gw-9",
                "gateway",
                site="s2",
                ip="10.0.0.1",
                subnet="10.0.0.0/24",
                upload_interval_s=60,
                max_controllers=0,
                max_bus_devices=0,
            ),
        ),
    ),
    Case(
        "duplicate ip",
        (config("ctl-1", ip="10.0.0.1"),),
        frozenset(
            {V("ip.duplicate", "ctl-1", "config.ip"), V("ip.duplicate", "gw-1", "config.ip")}
        ),
        related={"ctl-1": ("gw-1",), "gw-1": ("ctl-1",)},
    ),
    Case(
        "gateway ip outside its subnet",
        (config("gw-1", ip="10.0.1.1"),),
        frozenset({V("ip.outside_subnet", "gw-1", "config.ip")}),
    ),
    Case(
        "controller ip outside the gateway subnet",
        (config("ctl-1", ip="192.168.1.5"),),
        frozenset({V("ip.outside_subnet", "ctl-1", "config.ip")}),
        related={"ctl-1": ("gw-1",)},
    ),
    Case(
        "changing the gateway subnet",
        (config("gw-1", subnet="10.0.5.0/24"),),
        frozenset(
            {
                V("ip.outside_subnet", "gw-1", "config.ip"),
                V("ip.outside_subnet", "ctl-1", "config.ip"),
            }
        ),
    ),
    Case("controller without ip", (config("ctl-1", drop=("ip",)),)),
    # sampling
    Case("sampling equals upload", (config("sen-1", sampling_interval_s=60),)),
    Case(
        "sampling exceeds upload",
        (config("sen-1", sampling_interval_s=120),),
        frozenset({V("sensor.sampling_exceeds_upload", "sen-1", "config.sampling_interval_s")}),
        related={"sen-1": ("gw-1",)},
    ),
    Case(
        "lowering the upload interval below a sampling interval",
        (config("gw-1", upload_interval_s=10),),
        frozenset({V("sensor.sampling_exceeds_upload", "gw-1", "config.upload_interval_s")}),
        related={"gw-1": ("sen-1",)},
    ),
    # grid
    Case("grid at the limit", (), grid_kw=50.0),
    Case("no grid limit", (config("inv-1", rated_power_kw=5000),), grid_kw=None),
    Case(
        "lowering the grid connection",
        (),
        frozenset({V("site.grid_capacity_exceeded", "s1", "grid_connection_kw")}),
        grid_kw=40.0,
        related={"s1": ("inv-1",)},
    ),
    Case(
        "adding an inverter over the grid connection",
        (add("inv-2", "inverter", "gw-1", modbus_address=3, rated_power_kw=60),),
        frozenset({V("site.grid_capacity_exceeded", "s1", "grid_connection_kw")}),
        related={"s1": ("inv-1", "inv-2")},
    ),
    # badge zones
    Case(
        "badge zone unknown",
        (config("bdg-1", zones=["lobby", "lab"]),),
        frozenset({V("badge.zone_unknown", "bdg-1", "config.zones[1]")}),
    ),
    Case(
        "removing the only reader of a zone",
        (delete("rdr-1"),),
        frozenset({V("badge.zone_unknown", "bdg-1", "config.zones[0]")}),
    ),
    Case(
        "changing a reader's zone",
        (config("rdr-1", zone="vault"),),
        frozenset({V("badge.zone_unknown", "bdg-1", "config.zones[0]")}),
    ),
    Case(
        "zone provided by a reader on another site",
        (move("bdg-1", site="s2"),),
        frozenset({V("badge.zone_unknown", "bdg-1", "config.zones[0]")}),
    ),
    Case(
        "second reader keeps the zone",
        (
            add("rdr-2", "badge_reader", "ctl-1", channel=2, door="Back door", zone="lobby"),
            delete("rdr-1"),
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    violations = run(case)
    assert {(v.code, v.object_id, v.path) for v in violations} == case.expected, violations
    for violation in violations:
        assert violation.message
        if violation.object_id in case.related:
            assert set(violation.related) == set(case.related[violation.object_id])


def test_every_rule_code_is_covered() -> None:
    codes = {code for case in CASES for code, _, _ in case.expected}
    assert codes == {
        "type.unknown",
        "config.schema",
        "ip.invalid_subnet",
        "parent.required",
        "parent.not_allowed",
        "parent.missing",
        "parent.other_site",
        "parent.cycle",
        "gateway.controllers_exceeded",
        "gateway.bus_devices_exceeded",
        "modbus.address_taken",
        "channel.out_of_range",
        "channel.taken",
        "ip.duplicate",
        "ip.outside_subnet",
        "sensor.sampling_exceeds_upload",
        "site.grid_capacity_exceeded",
        "badge.zone_unknown",
    }


def test_valid_site_has_no_violations() -> None:
    assert check_all(build(valid_site())) == []


def test_messages_name_the_values() -> None:
    case = Case("address taken", (config("inv-1", modbus_address=1),))
    messages = {v.object_id: v.message for v in run(case)}
    assert messages["inv-1"] == "Modbus address 1 is already used on gateway GW-1 by meter MET-1"


def test_all_violations_are_returned() -> None:
    case = Case(
        "many",
        (
            config("sen-1", channel=8, sampling_interval_s=120, kind="smell"),
            config("inv-1", modbus_address=1),
            config("bdg-1", zones=["lobby", "lab", "vault"]),
            add("x-1", "toaster"),
        ),
        grid_kw=10.0,
    )
    found = {(v.code, v.object_id, v.path) for v in run(case)}
    assert found == {
        V("config.schema", "sen-1", "config.kind"),
        V("channel.out_of_range", "sen-1", "config.channel"),
        V("sensor.sampling_exceeds_upload", "sen-1", "config.sampling_interval_s"),
        V("modbus.address_taken", "inv-1", "config.modbus_address"),
        V("modbus.address_taken", "met-1", "config.modbus_address"),
        V("badge.zone_unknown", "bdg-1", "config.zones[1]"),
        V("badge.zone_unknown", "bdg-1", "config.zones[2]"),
        V("site.grid_capacity_exceeded", "s1", "grid_connection_kw"),
        V("type.unknown", "x-1", "type"),
    }


GARBAGE: dict[str, Any] = {
    "ip": 5,
    "subnet": None,
    "upload_interval_s": "often",
    "max_controllers": -1.5,
    "channels": [],
    "channel": "first",
    "modbus_address": {"a": 1},
    "rated_power_kw": 10**400,
    "ct_ratio": "lots",
    "sampling_interval_s": float("nan"),
    "zone": 3,
    "zones": "lobby",
}


@pytest.mark.parametrize("type_key", sorted(CATALOGUE))
def test_garbage_config_yields_schema_violations_without_raising(type_key: str) -> None:
    assets = valid_site()
    garbage = {
        k: v for k, v in GARBAGE.items() if k in CATALOGUE[type_key].config_schema["properties"]
    }
    target = next(a for a in assets.values() if a.type == type_key)
    assets[target.id] = replace(target, config=garbage)
    violations = check_all(build(assets, changed={target.id}))
    schema = [v for v in violations if v.code == "config.schema"]
    assert schema
    assert all(v.object_id == target.id and v.path.startswith("config") for v in schema)
    required = CATALOGUE[type_key].config_schema["required"]
    missing = {f"config.{k}" for k in required if k not in garbage}
    assert missing <= {v.path for v in schema}


@pytest.mark.parametrize("bad", [None, [], "text", 42])
def test_non_object_config_is_a_schema_violation(bad: Any) -> None:
    assets = {a.id: replace(a, config=bad) for a in valid_site().values()}
    violations = check_all(build(assets))
    schema = {v.object_id for v in violations if v.code == "config.schema"}
    assert schema == set(assets)
    assert all(v.path == "config" for v in violations if v.code == "config.schema")


def test_garbage_in_unchanged_assets_does_not_crash_relational_rules() -> None:
    assets = {a.id: replace(a, config=dict(GARBAGE)) for a in valid_site().values()}
    assert check_all(build(assets, changed=set())) == []


@pytest.mark.parametrize("type_key", sorted(CATALOGUE))
def test_catalogue_schema_is_valid_draft_2020_12(type_key: str) -> None:
    schema = CATALOGUE[type_key].config_schema
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert "default" not in repr(schema)


def test_catalogue_is_consistent() -> None:
    capacities = {name for t in CATALOGUE.values() for name in t.capacities}
    for asset_type in CATALOGUE.values():
        assert asset_type.parent_types <= set(CATALOGUE)
        assert asset_type.counts_as is None or asset_type.counts_as in capacities
        properties = asset_type.config_schema["properties"]
        keys = [
            asset_type.channel_key,
            asset_type.channel_count_key,
            asset_type.modbus_address_key,
            asset_type.ip_key,
            asset_type.subnet_key,
            asset_type.upload_interval_key,
            asset_type.sampling_key,
            asset_type.power_kw_key,
            asset_type.provides_zone_key,
            asset_type.requires_zones_key,
            *(c.limit_key for c in asset_type.capacities.values()),
        ]
        assert {k for k in keys if k is not None} <= set(properties), asset_type.key
    assert get_type("gateway") is CATALOGUE["gateway"]
    assert get_type("toaster") is None


def test_schema_checks_are_compiled_once() -> None:
    from outpost.inventory.rules import own_data

    own_data._fast_check.cache_clear()
    check_config_schema_list = list(check_config_schema(build(valid_site())))
    check_all(build(valid_site()))
    assert check_config_schema_list == []
    assert own_data._fast_check.cache_info().currsize == len(
        {a.type for a in valid_site().values()}
    )
    assert own_data._fast_check.cache_info().misses == own_data._fast_check.cache_info().currsize


FAST_PATH_SAMPLES = [
    {"channels": True},
    {"channels": 1.0},
    {"channels": 1.5},
    {"channels": "3"},
    {"channels": 0},
    {"channels": 64, "ip": "10.0.0.01"},
    {"channels": 64, "ip": "256.1.1.1"},
    {"channels": 64, "ip": "10.0.0.1"},
    {"channels": 8, "extra": 1},
    {},
    {"holder": "A", "zones": ["a", "a"]},
    {"holder": "A", "zones": ["a"], "valid_until": "2026-01-01T00:00:00"},
    {"holder": "A", "zones": ["a"], "valid_until": "2026-01-01T00:00:00+00:00"},
    {"holder": "A", "zones": [1]},
    {"modbus_address": 248, "rated_power_kw": 5},
    {"modbus_address": 1, "rated_power_kw": 0},
    {
        "ip": "10.0.0.1",
        "subnet": "10.0.0.0/24",
        "upload_interval_s": 4,
        "max_controllers": 1,
        "max_bus_devices": 1,
    },
]


@pytest.mark.parametrize("config", FAST_PATH_SAMPLES)
@pytest.mark.parametrize("type_key", sorted(CATALOGUE))
def test_fast_schema_check_agrees_with_jsonschema(type_key: str, config: dict[str, object]) -> None:
    """The compiled fast path may only ever say "valid" when jsonschema agrees."""
    from outpost.inventory.rules import own_data

    full = not list(own_data._validator(type_key).iter_errors(config))
    assert own_data._conforms(type_key, config) == full


def test_rules_are_named_checks() -> None:
    assert all(rule.__name__.startswith("check_") for rule in RULES)
    assert len(set(RULES)) == len(RULES)


def large_site(gateways: int = 20, controllers: int = 10, sensors: int = 24) -> Assets:
    assets: Assets = {}
    for g in range(gateways):
        gw = f"gw-{g}"
        assets[gw] = make(
            gw,
            "gateway",
            ip=f"10.{g}.0.1",
            subnet=f"10.{g}.0.0/16",
            upload_interval_s=300,
            max_controllers=controllers,
            max_bus_devices=2,
        )
        for c in range(controllers):
            ctl = f"{gw}-c{c}"
            assets[ctl] = make(ctl, "controller", gw, channels=sensors, ip=f"10.{g}.{c + 1}.1")
            for s in range(sensors):
                sid = f"{ctl}-s{s}"
                assets[sid] = make(
                    sid, "sensor", ctl, channel=s, kind="power", unit="W", sampling_interval_s=60
                )
    return assets


def test_large_site_is_checked_quickly() -> None:
    assets = large_site()
    assert len(assets) > 5000
    state = build(assets)
    start = time.perf_counter()
    violations = check_all(state)
    elapsed = time.perf_counter() - start
    assert violations == []
    assert elapsed < 5.0, f"check_all took {elapsed:.2f}s for {len(assets)} assets"


def test_many_duplicates_keep_related_bounded() -> None:
    from outpost.inventory.rules import RELATED_LIMIT

    assets = large_site(gateways=1, controllers=1, sensors=64)
    for asset in list(assets.values()):
        if asset.type == "sensor":
            assets[asset.id] = replace(asset, config={**asset.config, "channel": 0})
    taken = [v for v in check_all(build(assets, changed=set())) if v.code == "channel.taken"]
    assert len(taken) == 64
    assert all(len(v.related) == min(63, RELATED_LIMIT) for v in taken)
    assert taken[0].message.endswith("sensor GW-0-C0-S3 and 60 more")

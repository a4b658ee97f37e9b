"""Asset types described as data: allowed parents, config schema, and the traits rules read.

Adding a type is adding an entry to ``CATALOGUE`` (see
``docs/development/adding-an-asset-type.md``). Rules never branch on a type key;
they read the traits below, each of which names the config key that holds a
value (or ``None`` when the type does not take part in that relation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Capacity:
    """A limit a parent holds in its config, consumed by children that count as one unit."""

    limit_key: str
    code: str
    noun: str


@dataclass(frozen=True, slots=True)
class AssetType:
    """One kind of asset: where it may sit, what its config looks like, which rules apply.

    Relation traits (all optional config keys):

    - ``channel_key``: the channel this asset occupies on its parent.
    - ``channel_count_key``: how many channels this asset offers its children.
    - ``modbus_address_key``: the address this asset has on its parent's Modbus bus.
    - ``counts_as``: the capacity (a key of the parent's ``capacities``) it consumes.
    - ``capacities``: limits this asset imposes on its children, by ``counts_as`` name.
    - ``ip_key`` / ``subnet_key``: its IP address / the subnet it and its descendants use.
    - ``upload_interval_key`` / ``sampling_key``: an upload interval its descendants'
      sampling interval must not exceed.
    - ``power_kw_key``: power summed against the site's grid connection.
    - ``provides_zone_key`` / ``requires_zones_key``: an access zone it provides on
      its site / the list of zones it needs some asset on its site to provide.
    """

    key: str
    label: str
    parent_types: frozenset[str]
    config_schema: Mapping[str, Any] = field(hash=False)
    channel_key: str | None = None
    channel_count_key: str | None = None
    modbus_address_key: str | None = None
    counts_as: str | None = None
    capacities: Mapping[str, Capacity] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    ip_key: str | None = None
    subnet_key: str | None = None
    upload_interval_key: str | None = None
    sampling_key: str | None = None
    power_kw_key: str | None = None
    provides_zone_key: str | None = None
    requires_zones_key: str | None = None

    @property
    def is_root(self) -> bool:
        """True when the asset sits at the site root and takes no parent."""
        return not self.parent_types


def _object(properties: Mapping[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """A closed JSON Schema (draft 2020-12) object with the given properties."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


def _text(max_length: int = 128) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


_IPV4: Final = {
    "type": "string",
    "format": "ipv4",
    "description": "an IPv4 address, e.g. 10.0.0.1",
}
_OCTET: Final = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_CIDR: Final = {
    "type": "string",
    "pattern": rf"^{_OCTET}(\.{_OCTET}){{3}}/(3[0-2]|[12]?[0-9])$",
    "description": "an IPv4 network in CIDR notation, e.g. 10.0.0.0/24",
}
_CHANNEL: Final = {"type": "integer", "minimum": 0}
_MODBUS_ADDRESS: Final = {"type": "integer", "minimum": 1, "maximum": 247}

SENSOR_KINDS: Final = (
    "temperature",
    "irradiance",
    "humidity",
    "pressure",
    "wind_speed",
    "door_contact",
    "co2",
    "power",
)

_TYPES: Final = (
    AssetType(
        key="gateway",
        label="Gateway",
        parent_types=frozenset(),
        config_schema=_object(
            {
                "ip": _IPV4,
                "subnet": _CIDR,
                "upload_interval_s": {"type": "integer", "minimum": 5, "maximum": 3600},
                "max_controllers": {"type": "integer", "minimum": 0},
                "max_bus_devices": {"type": "integer", "minimum": 0, "maximum": 247},
                "firmware": _text(64),
            },
            ("ip", "subnet", "upload_interval_s", "max_controllers", "max_bus_devices"),
        ),
        capacities=MappingProxyType(
            {
                "controller": Capacity(
                    "max_controllers", "gateway.controllers_exceeded", "controller"
                ),
                "bus_device": Capacity(
                    "max_bus_devices", "gateway.bus_devices_exceeded", "bus device"
                ),
            }
        ),
        ip_key="ip",
        subnet_key="subnet",
        upload_interval_key="upload_interval_s",
    ),
    AssetType(
        key="controller",
        label="Controller",
        parent_types=frozenset({"gateway"}),
        config_schema=_object(
            {"channels": {"type": "integer", "minimum": 1, "maximum": 64}, "ip": _IPV4},
            ("channels",),
        ),
        channel_count_key="channels",
        counts_as="controller",
        ip_key="ip",
    ),
    AssetType(
        key="sensor",
        label="Sensor",
        parent_types=frozenset({"controller"}),
        config_schema=_object(
            {
                "channel": _CHANNEL,
                "kind": {"type": "string", "enum": list(SENSOR_KINDS)},
                "unit": _text(32),
                "sampling_interval_s": {"type": "integer", "minimum": 1, "maximum": 86_400},
            },
            ("channel", "kind", "unit", "sampling_interval_s"),
        ),
        channel_key="channel",
        sampling_key="sampling_interval_s",
    ),
    AssetType(
        key="meter",
        label="Meter",
        parent_types=frozenset({"gateway"}),
        config_schema=_object(
            {
                "modbus_address": _MODBUS_ADDRESS,
                "ct_ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000},
                "phases": {"type": "integer", "enum": [1, 3]},
            },
            ("modbus_address", "ct_ratio", "phases"),
        ),
        modbus_address_key="modbus_address",
        counts_as="bus_device",
    ),
    AssetType(
        key="inverter",
        label="Inverter",
        parent_types=frozenset({"gateway"}),
        config_schema=_object(
            {
                "modbus_address": _MODBUS_ADDRESS,
                "rated_power_kw": {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000},
            },
            ("modbus_address", "rated_power_kw"),
        ),
        modbus_address_key="modbus_address",
        counts_as="bus_device",
        power_kw_key="rated_power_kw",
    ),
    AssetType(
        key="badge_reader",
        label="Badge reader",
        parent_types=frozenset({"controller"}),
        config_schema=_object(
            {"channel": _CHANNEL, "door": _text(), "zone": _text(64)},
            ("channel", "door", "zone"),
        ),
        channel_key="channel",
        provides_zone_key="zone",
    ),
    AssetType(
        key="badge",
        label="Badge",
        parent_types=frozenset(),
        config_schema=_object(
            {
                "holder": _text(),
                "zones": {"type": "array", "items": _text(64), "uniqueItems": True},
                "valid_until": {
                    "type": "string",
                    "format": "date-time",
                    "description": "a date-time with a UTC offset, e.g. 2030-01-01T00:00:00Z",
                },
            },
            ("holder", "zones"),
        ),
        requires_zones_key="zones",
    ),
)

CATALOGUE: Final[Mapping[str, AssetType]] = MappingProxyType({t.key: t for t in _TYPES})


def get_type(key: str) -> AssetType | None:
    """The asset type with this key, or None when the catalogue has no such type."""
    return CATALOGUE.get(key)

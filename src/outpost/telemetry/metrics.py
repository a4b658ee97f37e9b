"""What each asset type measures, declared as data: name, kind, unit, value type, range.

Points are validated against these declarations (``telemetry/rules.py``). Adding a
metric is adding a ``Metric`` to its type's tuple below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

#: gauge: a level sampled over time; counter: only grows; event: a discrete occurrence.
Kind = Literal["gauge", "counter", "event"]
ValueType = Literal["float", "int", "bool"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    kind: Kind
    unit: str
    value_type: ValueType
    minimum: float
    maximum: float

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "unit": self.unit,
            "value_type": self.value_type,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


def _bool(name: str, label: str) -> Metric:
    return Metric(name, label, "event", "", "bool", 0, 1)


METRICS: Final[Mapping[str, tuple[Metric, ...]]] = MappingProxyType(
    {
        "gateway": (
            Metric("cpu_load_pct", "CPU load", "gauge", "%", "float", 0, 100),
            Metric("uptime_s", "Uptime", "counter", "s", "int", 0, 10**10),
        ),
        "controller": (
            Metric("cpu_load_pct", "CPU load", "gauge", "%", "float", 0, 100),
            Metric("temperature_c", "Board temperature", "gauge", "°C", "float", -40, 125),
        ),
        "sensor": (Metric("value", "Reading", "gauge", "", "float", -1e9, 1e9),),
        "meter": (
            Metric("active_power_w", "Active power", "gauge", "W", "float", -1e7, 1e7),
            Metric("energy_import_kwh", "Energy imported", "counter", "kWh", "float", 0, 1e10),
            Metric("voltage_l1_v", "Voltage L1", "gauge", "V", "float", 0, 1000),
        ),
        "inverter": (
            Metric("ac_power_kw", "AC power", "gauge", "kW", "float", -10, 10_000),
            Metric("energy_total_kwh", "Energy produced", "counter", "kWh", "float", 0, 1e10),
            Metric("dc_voltage_v", "DC voltage", "gauge", "V", "float", 0, 2000),
        ),
        "badge_reader": (_bool("access_granted", "Access granted"),),
    }
)


def metrics_of(asset_type: str) -> tuple[Metric, ...]:
    return METRICS.get(asset_type, ())


def find_metric(asset_type: str, name: str) -> Metric | None:
    for metric in METRICS.get(asset_type, ()):
        if metric.name == name:
            return metric
    return None


#: Every metric name declared by some type (query parameters are checked against it).
ALL_METRIC_NAMES: Final[frozenset[str]] = frozenset(
    metric.name for metrics in METRICS.values() for metric in metrics
)

"""What a telemetry query answers, and how its values are typed and written out.

The result types (series, latest readings) with their JSON shapes, the rule that decides
whether a series' values render as booleans, integers or floats, and the CSV export.
``query.py`` fills them from the store's answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from outpost.telemetry.metrics import Metric
from outpost.telemetry.query_request import TelemetryAsset, format_ns, format_time
from outpost.telemetry.store import Across, Aggregate, Resolution

ValueType = Literal["float", "int", "bool"]
Value = float | int | bool | None


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesResult:
    asset_id: str | None
    metric: str
    unit: str
    value_type: ValueType
    times_ns: list[int]
    values: list[Value]

    def points(self) -> list[tuple[str, Value]]:
        return [(format_ns(t), v) for t, v in zip(self.times_ns, self.values, strict=True)]


@dataclass(frozen=True, slots=True)
class QueryResult:
    start: datetime
    end: datetime
    every: str | None
    aggregate: Aggregate
    across: Across | None
    resolution: Resolution
    series: list[SeriesResult]

    def as_dict(self) -> dict[str, object]:
        return {
            "start": format_time(self.start),
            "end": format_time(self.end),
            "every": self.every,
            "aggregate": self.aggregate,
            "across": self.across,
            "resolution": self.resolution,
            "series": [
                {
                    "asset_id": s.asset_id,
                    "metric": s.metric,
                    "unit": s.unit,
                    "value_type": s.value_type,
                    "points": s.points(),
                }
                for s in self.series
            ],
        }

    @property
    def point_count(self) -> int:
        return sum(len(s.times_ns) for s in self.series)


@dataclass(frozen=True, slots=True)
class LatestReading:
    asset_id: str
    metric: str
    unit: str
    value_type: ValueType
    time_ns: int
    value: Value

    def as_dict(self) -> dict[str, object]:
        return {
            "asset_id": self.asset_id,
            "metric": self.metric,
            "unit": self.unit,
            "value_type": self.value_type,
            "time": format_ns(self.time_ns),
            "value": self.value,
        }


@dataclass(frozen=True, slots=True)
class LatestResult:
    assets: list[TelemetryAsset]
    readings: list[LatestReading]

    def as_dict(self) -> dict[str, object]:
        return {
            "assets": [
                {"id": a.id, "name": a.name, "type": a.type, "site_id": a.site_id}
                for a in self.assets
            ],
            "readings": [r.as_dict() for r in self.readings],
        }


# --- values -----------------------------------------------------------------------------

_KEEPS_TYPE: Final[frozenset[str]] = frozenset({"first", "last", "min", "max"})


def value_type_of(metric: Metric, aggregate: Aggregate | None, across: Across | None) -> ValueType:
    """How a series' values are rendered: booleans stay booleans (and integers integers)
    only while every step keeps a reading's own value (raw points, first/last/min/max,
    and integer sums); a count is an integer; means are floats."""
    if aggregate is None:  # raw points
        return metric.value_type
    if aggregate == "count":
        return "int" if across in (None, "sum", "min", "max") else "float"
    if metric.value_type == "bool":
        return "bool" if aggregate in _KEEPS_TYPE and across in (None, "min", "max") else "float"
    if metric.value_type == "int":
        keeps = aggregate in _KEEPS_TYPE | {"sum"} and across in (None, "sum", "min", "max")
        return "int" if keeps else "float"
    return "float"


def renderer_for(value_type: ValueType) -> Callable[[float], Value]:
    def render(value: float) -> Value:
        if not math.isfinite(value):
            return None
        if value_type == "bool":
            return value >= 0.5
        if value_type == "int":
            return round(value)
        return value

    return render


# --- CSV --------------------------------------------------------------------------------

CSV_HEADER: Final = "time,asset_id,metric,value\r\n"


def _csv_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def csv_lines(result: QueryResult) -> Iterator[str]:
    """The result as CSV (RFC 4180 line ends), one row per point, the header first."""
    yield CSV_HEADER
    for series in result.series:
        asset = series.asset_id or ""
        for time_ns, value in zip(series.times_ns, series.values, strict=True):
            yield f"{format_ns(time_ns)},{asset},{series.metric},{_csv_value(value)}\r\n"

"""Request and response models of the telemetry query API (ingestion has its own)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from outpost.inventory.schemas import ObjectId, Strict
from outpost.telemetry.store import Across, Aggregate

MAX_ASSET_IDS = 1000
MAX_METRICS = 50

MetricName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
AssetType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
#: A window length: a whole number of seconds, minutes, hours or days (``10s``, ``15m``).
Every = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,6}[smhd]$")]


def _as_list(value: Any) -> Any:
    """A query parameter given once arrives as a string; repeated, as a list."""
    if isinstance(value, str):
        return [value]
    return value


class AssetSelection(Strict):
    """Which assets: ``asset`` ids (repeatable) and/or every asset of a ``site``, optionally
    of one asset ``type``; and which ``metric`` names (repeatable; none: every metric the
    assets declare)."""

    asset: Annotated[list[ObjectId], Field(max_length=MAX_ASSET_IDS)] = Field(default_factory=list)
    site: ObjectId | None = None
    type: AssetType | None = None
    metric: Annotated[list[MetricName], Field(max_length=MAX_METRICS)] = Field(default_factory=list)

    @field_validator("asset", "metric", mode="before")
    @classmethod
    def _repeatable(cls, value: Any) -> Any:
        return _as_list(value)


class TelemetryQuery(AssetSelection):
    """A time-series query. Times are ISO 8601 with an offset (``Z``); default: the last
    24 hours. No ``every``: raw points."""

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    every: Every | None = None
    aggregate: Aggregate = "mean"
    across: Across | None = None
    format: Literal["json", "csv"] | None = None


class LatestQuery(AssetSelection):
    """The latest reading of each (asset, metric)."""


class MetricsQuery(Strict):
    type: AssetType | None = None


# --- responses (documented in the OpenAPI document) ---------------------------------------

Value = float | int | bool | None


class SeriesOut(BaseModel):
    asset_id: str | None = Field(description="None when combined across assets")
    metric: str
    unit: str
    value_type: Literal["float", "int", "bool"]
    points: list[tuple[str, Value]] = Field(description="[time (ISO 8601 UTC), value] pairs")


class QueryOut(BaseModel):
    start: str
    end: str
    every: str | None
    aggregate: Aggregate
    across: Across | None
    resolution: Literal["raw", "1m", "1h"]
    series: list[SeriesOut]


class ReadingOut(BaseModel):
    asset_id: str
    metric: str
    unit: str
    value_type: Literal["float", "int", "bool"]
    time: str
    value: Value


class LatestAssetOut(BaseModel):
    id: str
    name: str
    type: str
    site_id: str


class LatestOut(BaseModel):
    assets: list[LatestAssetOut]
    readings: list[ReadingOut]


class MetricOut(BaseModel):
    name: str
    label: str
    kind: Literal["gauge", "counter", "event"]
    unit: str
    value_type: Literal["float", "int", "bool"]
    minimum: float
    maximum: float


class AssetTypeMetricsOut(BaseModel):
    type: str
    metrics: list[MetricOut]


class MetricsOut(BaseModel):
    types: list[AssetTypeMetricsOut]

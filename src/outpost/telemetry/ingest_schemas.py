"""Models of the ingestion endpoints (the bodies themselves are read by hand, for speed)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: InfluxDB v1's ``precision`` values, and the long forms clients also send.
Precision = Literal["n", "ns", "u", "us", "ms", "s", "m", "h"]


class IngestOut(BaseModel):
    accepted: int = Field(description="How many values were stored (durably).")


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    raw_days: int = Field(description="How long raw points are kept (1-3650, default 30).")
    rollup_days: int = Field(
        description="How long the 1-minute and 1-hour rollups are kept (≥ raw_days, default 730)."
    )


class RetentionOut(BaseModel):
    raw_days: int
    rollup_days: int


class WriteQuery(BaseModel):
    """InfluxDB v1 ``/write`` parameters: ``db``, ``rp`` and ``consistency`` are accepted
    and ignored (the organization comes from the credential)."""

    model_config = ConfigDict(extra="forbid")

    precision: Precision = "ns"
    db: Annotated[str, Field(max_length=200)] | None = None
    rp: Annotated[str, Field(max_length=200)] | None = None
    consistency: Annotated[str, Field(max_length=20)] | None = None
    u: Annotated[str, Field(max_length=200)] | None = Field(default=None, description="Ignored.")
    p: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="A credential, like InfluxDB's password parameter."
    )


JSON_BATCH_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["points"],
            "properties": {
                "points": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["asset", "values"],
                        "properties": {
                            "asset": {"type": "string", "description": "Asset id or serial."},
                            "time": {
                                "oneOf": [
                                    {"type": "string", "format": "date-time"},
                                    {"type": "integer", "description": "ms since the epoch"},
                                ]
                            },
                            "values": {
                                "type": "object",
                                "additionalProperties": {
                                    "oneOf": [{"type": "number"}, {"type": "boolean"}]
                                },
                            },
                        },
                    },
                }
            },
        }
    }
}
LINE_PROTOCOL_BODY = {"text/plain": {"schema": {"type": "string"}}}

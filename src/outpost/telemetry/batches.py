"""The JSON batch of ``POST /api/v1/telemetry`` (and of MQTT messages), read into samples.

    {"points": [{"asset": "<id or serial>", "time": "2026-11-23T10:00:00Z",
                 "values": {"ac_power_kw": 12.5, "dc_voltage_v": 612.0}}]}

``time`` is ISO 8601 with an offset, or an integer of milliseconds since the epoch;
without it the server's receive time is used. Read by hand rather than by pydantic:
it is the hot path (tens of thousands of values per request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from outpost.errors import BadRequest
from outpost.telemetry.ingest import Sample
from outpost.telemetry.store import to_ns
from outpost.validation import Violation

NS_PER_MS: Final = 1_000_000
_MAX_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def samples_from_json(document: object) -> list[Sample]:
    """Every value of the batch as a sample; BadRequest listing each shape error."""
    if not isinstance(document, dict) or not isinstance(document.get("points"), list):
        raise BadRequest(
            'The body must be a JSON object {"points": [...]}.',
            [Violation("telemetry.malformed_batch", "Expected an object with a points list.")],
        )
    samples: list[Sample] = []
    problems: list[Violation] = []
    for index, entry in enumerate(document["points"]):
        where = f"points[{index}]"
        if not isinstance(entry, dict):
            problems.append(_shape(where, "Each point is an object with asset and values."))
            continue
        asset = entry.get("asset")
        values = entry.get("values")
        if not isinstance(asset, str) or not 0 < len(asset) <= 128:
            problems.append(_shape(f"{where}.asset", "asset is an asset id or serial (text)."))
            continue
        if not isinstance(values, dict) or not values:
            problems.append(_shape(f"{where}.values", "values maps metric names to values."))
            continue
        time_ns = _time_ns(entry.get("time"))
        if isinstance(time_ns, Violation):
            problems.append(_shape(f"{where}.time", time_ns.message))
            continue
        for metric, value in values.items():
            samples.append(Sample(asset, metric, value, time_ns, f"{where}.values.{metric}"))
        if len(problems) >= 100:
            break
    if problems:
        raise BadRequest(f"The batch is malformed at {len(problems)} place(s).", problems)
    return samples


def _time_ns(value: object) -> int | Violation | None:
    if value is None:
        return None
    if type(value) is int:
        if not 0 <= value <= _MAX_MS:
            return Violation("", "time in milliseconds since the epoch is out of range.")
        return value * NS_PER_MS
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return Violation("", f"time {value[:40]!r} is not ISO 8601.")
        if moment.tzinfo is None:
            return Violation("", "time needs a UTC offset, e.g. 2026-11-23T10:00:00Z.")
        return to_ns(moment)
    return Violation("", "time is an ISO 8601 string or integer milliseconds.")


def _shape(path: str, message: str) -> Violation:
    return Violation("telemetry.malformed_batch", message, path)

"""A batch of MQTT deliveries made ready to store: parsed, the sender of each resolved
once, validated through ``ingest()``, and every point gathered for one store write.

Preparing touches only the Outpost database (read-only) and never the time-series
store, so the pipeline (``mqtt_ingest.py``) prepares one batch while the previous one
is being written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from outpost.connectivity.credentials import Device, find_device
from outpost.db import Database
from outpost.errors import BadRequest, Forbidden, OutpostError, RuleViolation, ServiceUnavailable
from outpost.telemetry.batches import samples_from_json
from outpost.telemetry.ingest import IngestResult, Sample, ingest
from outpost.telemetry.lineprotocol import parse_line_protocol
from outpost.telemetry.mqtt_connection import Delivery
from outpost.telemetry.store import Point, Reading, Series, SeriesQuery, TelemetryStore
from outpost.validation import Violation

_TOPIC_PREFIX: Final = "outpost/devices/"
_TOPIC_SUFFIX: Final = "/telemetry"
#: How many violations an error message to a device lists.
_LISTED: Final = 10
#: Cached device lookups kept at most (the cache is emptied beyond).
_DEVICES_KEPT: Final = 100_000


class Retry(Exception):
    """The batch cannot be handled now; nothing is acknowledged, try it again."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class Parsed:
    message: Delivery
    device_id: str
    samples: list[Sample] = field(default_factory=list)
    partial: bool = False
    #: Why (part of) the message is refused; published to the device.
    problems: list[Violation] = field(default_factory=list)
    refusal: str = ""
    accepted: int = 0

    @property
    def refused(self) -> bool:
        return bool(self.refusal or self.problems)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """Deliveries in the order received, and the points of all of them."""

    items: list[Parsed]
    points: list[Point]

    @property
    def deliveries(self) -> list[Delivery]:
        return [item.message for item in self.items]


class BatchPreparer:
    """Parses and validates batches; holds the short-lived cache of device lookups.
    Used from one thread."""

    def __init__(
        self, database: Database, store: TelemetryStore, *, device_cache_s: float, max_points: int
    ) -> None:
        self._database = database
        self._store = store
        self._device_cache_s = device_cache_s
        self._max_points = max_points
        self._devices: dict[str, tuple[float, Device | None]] = {}

    def prepare(self, deliveries: Sequence[Delivery]) -> PreparedBatch:
        """Raises ``Retry`` when the database cannot be read now."""
        items = [parse(delivery) for delivery in deliveries]
        by_device: dict[str, list[Parsed]] = {}
        for item in items:
            if not item.refusal:
                by_device.setdefault(item.device_id, []).append(item)
        deferred = _DeferredStore(self._store)
        try:
            with self._database.unit_of_work(write=False) as session:
                for device_id, sent in by_device.items():
                    device = self._device(session, device_id)
                    if device is None:
                        for item in sent:
                            item.refusal = "no_device"
                        continue
                    sent = [item for item in sent if item.samples]
                    if sent:
                        self._ingest_sender(session, deferred, device, sent)
        except ServiceUnavailable as exc:
            raise Retry(str(exc), float(exc.retry_after_s)) from exc
        except OperationalError as exc:
            raise Retry("the database is unavailable", 2.0) from exc
        return PreparedBatch(items, deferred.points)

    def _device(self, session: Session, device_id: str) -> Device | None:
        now = time.monotonic()
        cached = self._devices.get(device_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        device = find_device(session, device_id)
        if len(self._devices) > _DEVICES_KEPT:
            self._devices.clear()
        self._devices[device_id] = (now + self._device_cache_s, device)
        return device

    def _ingest_sender(
        self, session: Session, store: _DeferredStore, device: Device, items: list[Parsed]
    ) -> None:
        """One ``ingest()`` for all of a sender's messages; should any be refused, each
        message again on its own so that one bad message spoils only itself."""
        samples = [sample for item in items for sample in item.samples]
        if len(items) > 1 and len(samples) <= self._max_points:
            mark = len(store.points)
            try:
                result = ingest(session, store, device, samples, max_points=self._max_points)
            except (RuleViolation, Forbidden):
                del store.points[mark:]
            else:
                _share(items, result)
                return
        for item in items:
            try:
                result = ingest(
                    session,
                    store,
                    device,
                    item.samples,
                    partial=item.partial,
                    max_points=self._max_points,
                )
            except ServiceUnavailable:
                raise
            except OutpostError as exc:  # refused for good: it can never succeed
                item.refusal = exc.type_slug
                item.problems.extend(_violations(exc))
            else:
                item.accepted = result.accepted
                item.problems.extend(result.rejected)


class _DeferredStore:
    """Collects the points every ``ingest()`` of a batch would write, so the batch is
    one store write; the rest of the protocol goes to the real store."""

    def __init__(self, store: TelemetryStore) -> None:
        self._store = store
        self.points: list[Point] = []

    def write(self, points: Sequence[Point]) -> None:
        self.points.extend(points)

    def query(self, query: SeriesQuery) -> list[Series]:
        return self._store.query(query)

    def latest(
        self, org_id: str, asset_ids: Sequence[str], metrics: Sequence[str] | None = None
    ) -> list[Reading]:
        return self._store.latest(org_id, asset_ids, metrics)

    def delete_range(
        self, org_id: str, asset_ids: Sequence[str] | None, start_ns: int, end_ns: int
    ) -> None:
        self._store.delete_range(org_id, asset_ids, start_ns, end_ns)

    def apply_retention(self, org_id: str, raw_before_ns: int, rollups_before_ns: int) -> int:
        return self._store.apply_retention(org_id, raw_before_ns, rollups_before_ns)

    def downsample(self, until_ns: int) -> int:
        return self._store.downsample(until_ns)

    def rolled_up_until(self) -> int:
        return self._store.rolled_up_until()

    def close(self) -> None:
        """The real store belongs to the caller."""


def device_of(topic: str) -> str:
    """``outpost/devices/<id>/telemetry`` → ``<id>`` ("" for any other topic)."""
    if topic.startswith(_TOPIC_PREFIX) and topic.endswith(_TOPIC_SUFFIX):
        device = topic[len(_TOPIC_PREFIX) : -len(_TOPIC_SUFFIX)]
        if device and "/" not in device:
            return device
    return ""


def parse(message: Delivery) -> Parsed:
    parsed = Parsed(message, device_of(message.topic))
    if not parsed.device_id:
        parsed.refusal = "no_device"
        return parsed
    payload = message.payload
    try:
        if payload.lstrip()[:1] == b"{":
            parsed.samples = samples_from_json(json.loads(payload))
        else:
            parsed.samples, parsed.problems = parse_line_protocol(payload, message.precision)
            parsed.partial = True
            if not parsed.samples:
                parsed.refusal = "malformed" if parsed.problems else "empty"
    except (ValueError, RecursionError):  # json.JSONDecodeError and UnicodeDecodeError too
        parsed.refusal = "malformed"
        parsed.problems.append(
            Violation("telemetry.malformed_batch", "The payload is not valid JSON.")
        )
    except BadRequest as exc:
        parsed.refusal = exc.type_slug
        parsed.problems.extend(exc.violations)
    return parsed


def error_report(item: Parsed) -> bytes:
    """What the device is told on its errors topic about a (partly) refused message."""
    body = {
        "error": item.refusal or "partially-stored",
        "accepted": item.accepted,
        "errors": [
            {"code": v.code, "message": v.message, "path": v.path} for v in item.problems[:_LISTED]
        ],
        "more": max(0, len(item.problems) - _LISTED),
    }
    return json.dumps(body).encode()


def _share(items: list[Parsed], result: IngestResult) -> None:
    """Spread one all-or-nothing result over the messages it covered."""
    for item in items:
        item.accepted = len(item.samples)
    if result.rejected:  # not partial: cannot happen, but never lose the record
        items[0].problems.extend(result.rejected)


def _violations(exc: OutpostError) -> list[Violation]:
    violations: list[Violation] = list(getattr(exc, "violations", []))
    if not violations:
        violations.append(Violation(f"telemetry.{exc.type_slug}", exc.detail))
    return violations

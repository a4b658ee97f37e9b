"""MQTT in: devices publish telemetry on ``outpost/devices/<asset id>/telemetry``.

The broker authenticates each device (username = asset id, password = its device
secret) and its ACL lets a device publish on its own topic only, so the topic names
the sender (``connectivity/mosquitto.py`` writes both files). The payload is the JSON
batch of ``POST /api/v1/telemetry`` or, when it does not start with ``{``, InfluxDB line
protocol (precision ``ns``, or the MQTT v5 user property ``precision``).

Delivery is at least once, end to end:

* The ingester subscribes with MQTT v5 to ``$share/<group>/outpost/devices/+/telemetry``
  at QoS 1 with manual acknowledgement: a PUBACK leaves only once ``ingest()`` has
  returned, i.e. once the points are durable (or the message can never succeed:
  malformed, refused, no live credential; those are logged and, for a known device,
  explained on ``outpost/devices/<id>/errors``).
* It connects with ``clean_start=False`` and a session expiry, so the broker keeps what
  was delivered but not acknowledged and sends it again when the same client id
  reconnects (after a crash, a restart or a network cut). Give each ingester process
  a stable client id of its own; Mosquitto does not hand one member's unacknowledged
  messages to the other members of the group. The store replaces a point with the
  same (asset, metric, time), so a redelivered message changes nothing.
* A store that is overloaded or unreachable is retried with backoff, batch unchanged,
  nothing acknowledged. Meanwhile the bounded queue fills; the broker stops sending
  once ``Receive Maximum`` messages are unacknowledged, and should it send more the
  network thread blocks on the queue (TCP backpressure). Nothing accepted is dropped.

Throughput comes from batching: messages from many devices are gathered (up to
``batch_messages`` or ``batch_wait_ms``), each sender's samples go through one
``ingest()`` and the whole batch's points through one store write.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from outpost.connectivity.credentials import Device, find_device
from outpost.connectivity.mosquitto import ERRORS_TOPIC, TELEMETRY_FILTER
from outpost.db import Database
from outpost.errors import (
    BadRequest,
    Forbidden,
    OutpostError,
    RuleViolation,
    ServiceUnavailable,
)
from outpost.telemetry.batches import samples_from_json
from outpost.telemetry.ingest import IngestResult, Sample, ingest
from outpost.telemetry.lineprotocol import parse_line_protocol
from outpost.telemetry.store import (
    Point,
    Reading,
    Series,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
    TelemetryStore,
)
from outpost.validation import Violation

log = logging.getLogger(__name__)

_TOPIC_PREFIX: Final = "outpost/devices/"
_TOPIC_SUFFIX: Final = "/telemetry"
#: How many violations an error message to a device lists.
_LISTED: Final = 10
_MAX_BACKOFF_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = "outpost-ingester"
    password: str = ""
    group: str = "outpost"
    #: Stable per ingester process: the broker keeps its unacknowledged messages under it.
    client_id: str = "outpost-ingest"
    batch_messages: int = 1_000
    batch_wait_ms: int = 50
    #: Messages received and not yet acknowledged (also the MQTT v5 Receive Maximum).
    queue_messages: int = 5_000
    session_expiry_s: int = 7 * 86_400
    keepalive_s: int = 30
    #: How long a device's credential lookup is trusted (revocation takes this long).
    device_cache_s: float = 5.0
    publish_errors: bool = True

    @property
    def subscription(self) -> str:
        return f"$share/{self.group}/{TELEMETRY_FILTER}"


@dataclass(slots=True)
class _Message:
    mid: int
    qos: int
    generation: int
    topic: str
    payload: bytes
    precision: str


@dataclass(slots=True)
class _Parsed:
    message: _Message
    device_id: str
    samples: list[Sample] = field(default_factory=list)
    partial: bool = False
    #: Why (part of) the message is refused; published to the device.
    problems: list[Violation] = field(default_factory=list)
    refusal: str = ""
    accepted: int = 0


@dataclass(frozen=True, slots=True)
class IngesterStats:
    messages: int
    points: int
    refused: int
    batches: int


class _Retry(Exception):
    """The batch could not be stored now; nothing is acknowledged, try it again."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


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


class MqttIngester:
    """Reads device telemetry from the broker into ``store``; ``run()`` blocks until
    ``stop()`` (thread-safe, fine from a signal handler)."""

    def __init__(
        self,
        options: MqttOptions,
        database: Database,
        store: TelemetryStore,
        *,
        max_points: int = 50_000,
    ) -> None:
        self.options = options
        self._database = database
        self._store = store
        self._max_points = max_points
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=options.queue_messages)
        self._stop_requested = False  # a plain flag: set from a signal handler
        self._intake_closed = threading.Event()
        self._aborted = threading.Event()
        self._subscribed = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self._devices: dict[str, tuple[float, Device | None]] = {}
        self._messages = self._points = self._refused = self._batches = 0
        self._client = self._make_client()

    # -- public -------------------------------------------------------------------------

    @property
    def stats(self) -> IngesterStats:
        with self._lock:
            return IngesterStats(self._messages, self._points, self._refused, self._batches)

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the subscription is in place (the broker answered SUBACK) in time."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Finish what was received, acknowledge it, then disconnect. Safe to call from a
        signal handler: it only sets a flag the consumer polls."""
        self._stop_requested = True

    def run(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.options.session_expiry_s
        properties.ReceiveMaximum = min(self.options.queue_messages, 65_535)
        self._client.connect_async(
            self.options.host,
            self.options.port,
            keepalive=self.options.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()
        try:
            self._consume()
        finally:
            self._intake_closed.set()
            if not self._aborted.is_set():
                self._client.disconnect()
                self._client.loop_stop()
                log.info("stopped: %s", self.stats)

    def abort(self) -> None:
        """Die as a crash would: stop reading, acknowledge nothing more, drop the TCP
        connection without a DISCONNECT (what a test of redelivery needs)."""
        self._aborted.set()
        self._intake_closed.set()
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    # -- MQTT callbacks (paho's network thread) -----------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.username_pw_set(self.options.username, self.options.password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the ingester's connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
        log.info(
            "connected to %s:%s as %s (session %s)",
            self.options.host,
            self.options.port,
            self.options.client_id,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe(self.options.subscription, options=SubscribeOptions(qos=1))

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._subscribed.clear()
        if not self._intake_closed.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error(
                "the broker refused the subscription %s: %s", self.options.subscription, reasons
            )
            return
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        precision = "ns"
        user_properties = getattr(msg.properties, "UserProperty", None) or ()
        for key, value in user_properties:
            if key == "precision":
                precision = value
        message = _Message(
            msg.mid, msg.qos, self._generation, msg.topic, bytes(msg.payload), precision
        )
        while not self._intake_closed.is_set():  # a full queue blocks the network thread
            try:
                self._queue.put(message, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- the consumer (the caller's thread) ---------------------------------------------

    def _consume(self) -> None:
        while not self._aborted.is_set():
            if self._stop_requested and not self._intake_closed.is_set():
                # Whatever arrives from now on stays unacknowledged: the broker sends it
                # again when this client id reconnects.
                self._intake_closed.set()
            batch = self._next_batch()
            if batch:
                self._process_with_retry(batch)
            elif self._intake_closed.is_set():
                return

    def _next_batch(self) -> list[_Message]:
        """Up to ``batch_messages`` messages, waiting at most ``batch_wait_ms`` once the
        first one is in (and not at all once stopping: only what is queued)."""
        try:
            first = self._queue.get(timeout=0 if self._intake_closed.is_set() else 0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.options.batch_wait_ms / 1000
        while len(batch) < self.options.batch_messages:
            remaining = 0.0 if self._intake_closed.is_set() else deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _process_with_retry(self, batch: list[_Message]) -> None:
        """Process ``batch`` until it is stored, backing off while the store is down.
        Stopping gives up on it unacknowledged: the broker delivers it again."""
        delay = 0.5
        while True:
            try:
                self._process(batch)
                return
            except _Retry as exc:
                wait = min(max(delay, exc.retry_after_s), _MAX_BACKOFF_S)
                log.warning(
                    "batch of %d messages not stored (%s); retrying in %.1fs",
                    len(batch),
                    exc,
                    wait,
                )
            except Exception:
                wait = min(delay, _MAX_BACKOFF_S)
                log.exception("batch of %d messages failed; retrying in %.1fs", len(batch), wait)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self._stop_requested or self._aborted.wait(0.2):
                    log.warning("stopping: %d messages left unacknowledged", len(batch))
                    return
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _process(self, batch: list[_Message]) -> None:
        parsed = [_parse(message) for message in batch]
        deferred = _DeferredStore(self._store)
        try:
            with self._database.unit_of_work() as session:
                by_sender: dict[Device, list[_Parsed]] = defaultdict(list)
                for item in parsed:
                    if item.refusal:
                        continue
                    device = self._device(session, item.device_id)
                    if device is None:
                        item.refusal = "no_device"
                        continue
                    if item.samples:
                        by_sender[device].append(item)
                for device, items in by_sender.items():
                    self._ingest_sender(session, deferred, device, items)
            if deferred.points:
                self._store.write(deferred.points)
        except (ServiceUnavailable, StoreOverloaded, StoreUnavailable) as exc:
            retry = getattr(exc, "retry_after_s", getattr(exc, "retry_after", 1))
            raise _Retry(str(exc), float(retry)) from exc
        except OperationalError as exc:
            raise _Retry("the database is unavailable", 2.0) from exc
        self._acknowledge(parsed, len(deferred.points))

    def _device(self, session: Session, device_id: str) -> Device | None:
        now = time.monotonic()
        cached = self._devices.get(device_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        device = find_device(session, device_id)
        if len(self._devices) > 100_000:
            self._devices.clear()
        self._devices[device_id] = (now + self.options.device_cache_s, device)
        return device

    def _ingest_sender(
        self, session: Session, store: _DeferredStore, device: Device, items: list[_Parsed]
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

    def _acknowledge(self, parsed: list[_Parsed], points: int) -> None:
        if self._aborted.is_set():
            return
        refused = 0
        with self._lock:
            generation = self._generation
        for item in parsed:
            message = item.message
            if item.refusal or item.problems:
                refused += 1
                self._report(item)
            # A message of an earlier connection is not ours to acknowledge by its mid:
            # the broker sends it again (the store takes the duplicate as is).
            if message.qos > 0 and message.generation == generation:
                code = self._client.ack(message.mid, message.qos)
                if code != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    log.warning("could not acknowledge message %d: %s", message.mid, code)
        with self._lock:
            self._messages += len(parsed)
            self._points += points
            self._refused += refused
            self._batches += 1

    def _report(self, item: _Parsed) -> None:
        """Log why a message was (partly) refused, and tell the device if it is one."""
        device_id = item.device_id
        codes = sorted({violation.code for violation in item.problems})
        if item.refusal == "no_device":
            log.warning("message on %r dropped: no live device credential", item.message.topic)
            return
        log.info(
            "device %s: message refused in %s (%s; %d value(s) stored): %s",
            device_id,
            "full" if item.refusal else "part",
            item.refusal or "invalid values",
            item.accepted,
            ", ".join(codes[:5]),
        )
        if not self.options.publish_errors or not device_id:
            return
        body = {
            "error": item.refusal or "partially-stored",
            "accepted": item.accepted,
            "errors": [
                {"code": v.code, "message": v.message, "path": v.path}
                for v in item.problems[:_LISTED]
            ],
            "more": max(0, len(item.problems) - _LISTED),
        }
        self._client.publish(
            ERRORS_TOPIC.format(device=device_id), json.dumps(body).encode(), qos=0
        )


def _device_of(topic: str) -> str:
    """``outpost/devices/<id>/telemetry`` → ``<id>`` ("" for any other topic)."""
    if topic.startswith(_TOPIC_PREFIX) and topic.endswith(_TOPIC_SUFFIX):
        device = topic[len(_TOPIC_PREFIX) : -len(_TOPIC_SUFFIX)]
        if device and "/" not in device:
            return device
    return ""


def _parse(message: _Message) -> _Parsed:
    parsed = _Parsed(message, _device_of(message.topic))
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


def _share(items: list[_Parsed], result: IngestResult) -> None:
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

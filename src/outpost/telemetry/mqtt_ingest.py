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

Throughput comes from batching and a two-stage pipeline. Messages from many devices are
gathered (up to ``batch_messages`` or ``batch_wait_ms``); the caller's thread parses the
batch, resolves each sender once, runs one ``ingest()`` per sender and gathers the whole
batch's points (``mqtt_batches.py``); a writer thread makes them durable in one store
write and only then acknowledges the batch's messages, batch after batch in the order
received. While batch N is being written, batch N+1 is already being prepared; at most
one prepared batch waits for the writer. Every message anywhere in the pipeline is
unacknowledged, so ``Receive Maximum`` bounds it all. The broker connection is in
``mqtt_connection.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final, TypeVar

from outpost.connectivity.mosquitto import ERRORS_TOPIC
from outpost.db import Database
from outpost.errors import ServiceUnavailable
from outpost.telemetry.mqtt_batches import (
    BatchPreparer,
    Parsed,
    PreparedBatch,
    Retry,
    error_report,
)
from outpost.telemetry.mqtt_connection import BrokerConnection, MqttOptions
from outpost.telemetry.store import Point, StoreOverloaded, StoreUnavailable, TelemetryStore

__all__ = ["IngesterStats", "MqttIngester", "MqttOptions"]

log = logging.getLogger(__name__)

_MAX_BACKOFF_S: Final = 30.0
#: How often a waiting thread looks whether it should stop.
_POLL_S: Final = 0.2

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class IngesterStats:
    messages: int
    points: int
    refused: int
    batches: int


class _Stopped(Exception):
    """Stopping while a batch could not be handled: it stays unacknowledged."""


#: Handed to the writer after the last batch.
_END: Final = PreparedBatch([], [])


class _Handoff:
    """Passes one prepared batch at a time to the writer. ``give`` returns once the
    writer has taken the batch, so the preparer gathers its next batch while the writer
    is busy (and that batch is as full as the wait allows)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._batch: PreparedBatch | None = None

    def give(self, batch: PreparedBatch, still: Callable[[], bool]) -> bool:
        """False if ``still()`` turned false before the writer took it."""
        with self._changed:
            if not self._taken(still):  # a batch given up on earlier
                return False
            self._batch = batch
            self._changed.notify_all()
            return self._taken(still)

    def _taken(self, still: Callable[[], bool]) -> bool:
        while self._batch is not None:
            if not still():
                return False
            self._changed.wait(_POLL_S)
        return True

    def take(self, timeout: float) -> PreparedBatch | None:
        """The batch given, or None if there was none within ``timeout``."""
        with self._changed:
            if self._batch is None:
                self._changed.wait(timeout)
            batch, self._batch = self._batch, None
            if batch is not None:
                self._changed.notify_all()
            return batch


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
        self._store = store
        self._connection = BrokerConnection(options)
        self._preparer = BatchPreparer(
            database, store, device_cache_s=options.device_cache_s, max_points=max_points
        )
        self._handoff = _Handoff()
        self._stop_requested = False  # a plain flag: set from a signal handler
        self._aborted = threading.Event()
        self._writer_gone = threading.Event()
        self._lock = threading.Lock()
        self._messages = self._points = self._refused = self._batches = 0

    # -- public -------------------------------------------------------------------------

    @property
    def stats(self) -> IngesterStats:
        with self._lock:
            return IngesterStats(self._messages, self._points, self._refused, self._batches)

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the subscription is in place (the broker answered SUBACK) in time."""
        return self._connection.wait_subscribed(timeout)

    def stop(self) -> None:
        """Finish what was received, acknowledge it, then disconnect. Safe to call from a
        signal handler: it only sets a flag the consumer polls."""
        self._stop_requested = True

    def run(self) -> None:
        self._connection.start()
        writer = threading.Thread(
            target=self._write_batches, name="mqtt-ingest-writer", daemon=True
        )
        writer.start()
        try:
            self._prepare_batches()
        finally:
            self._stop_requested = True  # the writer gives up a batch it cannot store
            self._connection.close_intake()
            self._hand_over(_END)
            writer.join()
            if not self._aborted.is_set():
                self._connection.disconnect()
                log.info("stopped: %s", self.stats)

    def abort(self) -> None:
        """Die as a crash would: stop reading, acknowledge nothing more, drop the TCP
        connection without a DISCONNECT (what a test of redelivery needs)."""
        self._aborted.set()
        self._connection.drop()

    # -- stage 1, the caller's thread: parse and validate ---------------------------------

    def _prepare_batches(self) -> None:
        connection, options = self._connection, self.options
        wait_s = options.batch_wait_ms / 1000
        while not self._aborted.is_set() and not self._writer_gone.is_set():
            if self._stop_requested and not connection.intake_closed:
                connection.close_intake()
            deliveries = connection.inbox.take(options.batch_messages, wait_s, _POLL_S)
            if not deliveries:
                if connection.intake_closed:
                    return
                continue
            try:
                prepared = self._retrying(
                    "prepared", len(deliveries), partial(self._preparer.prepare, deliveries)
                )
            except _Stopped:
                return
            if not self._hand_over(prepared):
                return

    def _hand_over(self, batch: PreparedBatch) -> bool:
        """Give ``batch`` to the writer once it is done with the previous one."""
        return self._handoff.give(batch, self._writer_alive)

    def _writer_alive(self) -> bool:
        return not self._aborted.is_set() and not self._writer_gone.is_set()

    # -- stage 2, the writer thread: store, then acknowledge -------------------------------

    def _write_batches(self) -> None:
        try:
            while not self._aborted.is_set():
                batch = self._handoff.take(_POLL_S)
                if batch is None:
                    continue
                if batch is _END:
                    return
                if batch.points:
                    self._retrying("stored", len(batch.items), partial(self._write, batch.points))
                if self._aborted.is_set():
                    return
                self._acknowledge(batch)
        except _Stopped:
            return
        finally:
            self._writer_gone.set()

    def _write(self, points: Sequence[Point]) -> None:
        try:
            self._store.write(points)
        except (StoreOverloaded, StoreUnavailable) as exc:
            raise Retry(str(exc), float(exc.retry_after)) from exc
        except ServiceUnavailable as exc:
            raise Retry(str(exc), float(exc.retry_after_s)) from exc

    def _retrying(self, what: str, size: int, attempt: Callable[[], _T]) -> _T:
        """``attempt()`` until it succeeds, backing off while it cannot. Stopping gives
        up on the batch unacknowledged (``_Stopped``): the broker delivers it again."""
        delay = 0.5
        while True:
            try:
                return attempt()
            except Retry as exc:
                wait = min(max(delay, exc.retry_after_s), _MAX_BACKOFF_S)
                log.warning(
                    "batch of %d messages not %s (%s); retrying in %.1fs", size, what, exc, wait
                )
            except Exception:
                wait = min(delay, _MAX_BACKOFF_S)
                log.exception("batch of %d messages failed; retrying in %.1fs", size, wait)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self._stop_requested or self._aborted.wait(_POLL_S):
                    log.warning("stopping: %d messages left unacknowledged", size)
                    raise _Stopped
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def _acknowledge(self, batch: PreparedBatch) -> None:
        refused = 0
        for item in batch.items:
            if item.refused:
                refused += 1
                self._report(item)
        self._connection.acknowledge(batch.deliveries)
        with self._lock:
            self._messages += len(batch.items)
            self._points += len(batch.points)
            self._refused += refused
            self._batches += 1

    def _report(self, item: Parsed) -> None:
        """Log why a message was (partly) refused, and tell the device if it is one."""
        if item.refusal == "no_device":
            log.warning("message on %r dropped: no live device credential", item.message.topic)
            return
        codes = sorted({violation.code for violation in item.problems})
        log.info(
            "device %s: message refused in %s (%s; %d value(s) stored): %s",
            item.device_id,
            "full" if item.refusal else "part",
            item.refusal or "invalid values",
            item.accepted,
            ", ".join(codes[:5]),
        )
        if self.options.publish_errors and item.device_id:
            self._connection.publish(ERRORS_TOPIC.format(device=item.device_id), error_report(item))

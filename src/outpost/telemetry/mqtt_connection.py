"""The ingester's side of the broker: one paho-mqtt 2 client (MQTT v5, persistent
session, manual acknowledgement), and the bounded inbox between its network thread and
the ingestion pipeline (``mqtt_ingest.py``).

The network thread only files each message in the inbox; a full inbox blocks it, so the
broker's TCP connection backs up. Before that, the broker stops sending once ``Receive
Maximum`` messages are unacknowledged, and every message in the inbox or anywhere in the
pipeline is unacknowledged: that bounds the whole pipeline's memory.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from outpost.connectivity.mosquitto import TELEMETRY_FILTER

log = logging.getLogger(__name__)

#: The most a client may announce as Receive Maximum (a two-byte integer).
_RECEIVE_MAXIMUM_LIMIT = 65_535


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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it; ``generation`` counts the connections, as
    a message id means something only on the connection that delivered it."""

    mid: int
    qos: int
    generation: int
    topic: str
    payload: bytes
    precision: str


class Inbox:
    """Deliveries waiting for the pipeline, at most ``capacity``. ``take`` hands out a
    whole batch at once and is woken only when a batch is complete (or its wait is over),
    not once per message."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: deque[Delivery] = deque()
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._wanted = sys.maxsize  # how many items wake the taker
        self._closed = False

    def put(self, delivery: Delivery) -> bool:
        """File ``delivery``, blocking while the inbox is full; False once closed."""
        with self._lock:
            while len(self._items) >= self._capacity:
                if self._closed:
                    return False
                self._drained.wait(0.5)
            if self._closed:
                return False
            self._items.append(delivery)
            if len(self._items) >= self._wanted:
                self._filled.notify()
            return True

    def take(self, most: int, wait_s: float, first_s: float) -> list[Delivery]:
        """Up to ``most`` deliveries: waits up to ``first_s`` for the first one, then up
        to ``wait_s`` for the batch to fill (once closed: only what is there)."""
        with self._lock:
            if not self._items and not self._closed:
                self._wanted = 1
                self._filled.wait(first_s)
            if self._items and not self._closed:
                deadline = time.monotonic() + wait_s
                self._wanted = most
                while len(self._items) < most and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._filled.wait(remaining)
            self._wanted = sys.maxsize
            items = self._items
            batch = [items.popleft() for _ in range(min(most, len(items)))]
            if batch:
                self._drained.notify_all()
            return batch

    def close(self) -> None:
        """Take nothing more in; what is inside can still be taken, without waiting."""
        with self._lock:
            self._closed = True
            self._filled.notify_all()
            self._drained.notify_all()


class BrokerConnection:
    """The client: connects with ``clean_start=False`` and a session expiry, subscribes
    to the shared subscription at QoS 1 on every (re)connection, and files every message
    in ``inbox``. Acknowledgements go out only through ``acknowledge``."""

    def __init__(self, options: MqttOptions) -> None:
        self.options = options
        self.inbox = Inbox(options.queue_messages)
        self._generation = 0
        self._intake_closed = threading.Event()
        self._subscribed = threading.Event()
        self._client = self._make_client()

    @property
    def intake_closed(self) -> bool:
        return self._intake_closed.is_set()

    def start(self) -> None:
        """Connect in the background (paho's network thread), reconnecting as needed."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.options.session_expiry_s
        properties.ReceiveMaximum = min(self.options.queue_messages, _RECEIVE_MAXIMUM_LIMIT)
        self._client.connect_async(
            self.options.host,
            self.options.port,
            keepalive=self.options.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def close_intake(self) -> None:
        """Whatever arrives from now on stays unacknowledged: the broker sends it again
        when this client id reconnects."""
        self._intake_closed.set()
        self.inbox.close()

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """PUBACK each delivery of the current connection, in order. One of an earlier
        connection is not ours to acknowledge by its id: the broker sends it again (the
        store takes the duplicate as is)."""
        generation = self._generation
        client = self._client
        for delivery in deliveries:
            if delivery.qos > 0 and delivery.generation == generation:
                code = client.ack(delivery.mid, delivery.qos)
                if code != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    log.warning("could not acknowledge message %d: %s", delivery.mid, code)

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=0)

    def disconnect(self) -> None:
        """A clean DISCONNECT (the session stays with the broker), then stop the thread."""
        self.close_intake()
        self._client.disconnect()
        self._client.loop_stop()

    def drop(self) -> None:
        """Go as a crash would: no DISCONNECT, the TCP connection just closes."""
        self.close_intake()
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    # -- paho's network thread -------------------------------------------------------------

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
        self._generation += 1  # only this thread writes it
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
        for key, value in getattr(msg.properties, "UserProperty", None) or ():
            if key == "precision":
                precision = value
        # A full inbox blocks this thread (TCP backpressure) until taken from or closed.
        self.inbox.put(
            Delivery(msg.mid, msg.qos, self._generation, msg.topic, bytes(msg.payload), precision)
        )

"""MQTT ingestion for ``bench/telemetry.py``: ``outpost ingest-mqtt`` vs the broker alone.

Both runs use a fresh private Mosquitto 2 (persistence on, unlimited in-flight and
queued messages: ``tests/support/mqtt_load.py``), the same 4 publisher processes and the
same messages. Each publisher is the gateway of one demo site, logged in with a device
credential, and publishes one JSON reading of one asset below it per message (all the
asset's metrics, 1.7 values on average) at QoS 1 with 20 messages in flight, paho-mqtt
2 over MQTT v5.

* Outpost: ``outpost ingest-mqtt`` (its defaults: batches of up to 1,000 messages or
  50 ms, PUBACK after the durable write) into a SQLite store of its own. The time runs
  from the first publish to the moment every value is in the store (polled every 20 ms).
* Reference: one paho-mqtt subscriber process on the same shared subscription at QoS 1
  that acknowledges each message as soon as it arrives and does nothing else (the
  broker's and the client library's own cost). The time runs from the first publish to
  the last message received.

The ratio is Outpost's messages/s over the reference's.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import select

from outpost.connectivity.credentials import issue_credential, live_broker_entries
from outpost.connectivity.mosquitto import TELEMETRY_FILTER
from outpost.db import Database
from outpost.demo import ADMIN_EMAIL
from outpost.identity import service as identity
from outpost.identity.models import User
from outpost.identity.principal import Actor
from outpost.inventory.models import Asset
from outpost.telemetry.metrics import metrics_of

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.mosquitto import INGESTER_PASSWORD, INGESTER_USERNAME
from support.mqtt_load import Publisher, persistent_mosquitto, running_ingester

PUBLISHERS = 4
INFLIGHT = 20
GROUP = "outpost"
MS = 1_000_000


@dataclass(frozen=True)
class Device:
    gateway: str
    secret: str
    messages: tuple[bytes, ...]
    values: int


@dataclass(frozen=True)
class Devices:
    entries: tuple[tuple[str, str], ...]  # the broker's password-file entries
    devices: tuple[Device, ...]

    @property
    def messages(self) -> int:
        return sum(len(d.messages) for d in self.devices)

    @property
    def values(self) -> int:
        return sum(d.values for d in self.devices)


def prepare(url: str, org_id: str, per_device: int, t0_ms: int) -> Devices:
    """Credentials for the gateways of the first ``PUBLISHERS`` sites, and each one's
    ``per_device`` messages: asset after asset of its subtree, one second apart per round."""
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            user = session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
            actor = Actor(identity.principal_for(session, user, org_id))
            gateways = session.execute(
                select(Asset.id, Asset.site_id)
                .where(Asset.org_id == org_id, Asset.type == "gateway")
                .order_by(Asset.serial)
                .limit(PUBLISHERS)
            ).all()
            devices = []
            for gateway, site_id in gateways:
                secret = issue_credential(session, actor, gateway).secret
                assets = session.execute(
                    select(Asset.id, Asset.type)
                    .where(Asset.site_id == site_id, Asset.type != "badge")
                    .order_by(Asset.serial)
                ).all()
                readers = [(a, metrics_of(kind)) for a, kind in assets if metrics_of(kind)]
                messages, values = [], 0
                for i in range(per_device):
                    asset_id, metrics = readers[i % len(readers)]
                    at_ms = t0_ms + (i // len(readers)) * 1000
                    reading = {m.name: _value(m.value_type, i) for m in metrics}
                    point = {"asset": asset_id, "time": at_ms, "values": reading}
                    messages.append(json.dumps({"points": [point]}).encode())
                    values += len(reading)
                devices.append(Device(gateway, secret, tuple(messages), values))
        with database.unit_of_work() as session:
            entries = tuple(live_broker_entries(session))
    finally:
        database.dispose()
    return Devices(entries, tuple(devices))


def _value(value_type: str, n: int) -> float | int | bool:
    if value_type == "bool":
        return n % 2 == 0
    if value_type == "int":
        return 12 + n % 50
    return 12.5 + (n % 50) / 4


# --- the processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    first_sent: float
    last_acked: float
    accepted: int
    failed: int


def publish_all(host: str, port: int, device: Device, start_at: float) -> Published:
    """A publisher process: every message of ``device``, then wait for every PUBACK."""
    publisher = Publisher(host, port, device.gateway, device.secret, inflight=INFLIGHT)
    publisher.connect()
    try:
        time.sleep(max(0.0, start_at - time.monotonic()))
        for number, message in enumerate(device.messages):
            publisher.publish(number, message)
        if not publisher.wait_acknowledged(len(device.messages), timeout=600):
            raise RuntimeError(f"{device.gateway}: PUBACKs missing")
        return Published(
            publisher.first_sent,
            publisher.last_acked,
            len(publisher.accepted),
            len(publisher.failed),
        )
    finally:
        publisher.close()


def _subscriber(host: str, port: int, expected: int, ready: Any, results: Any) -> None:
    """The reference consumer: paho acknowledges each QoS 1 message once ``on_message``
    has returned; this one only counts."""
    received = 0
    done = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: Any, _msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received == expected:
            results.put(time.monotonic())
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-reference-subscriber",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(INGESTER_USERNAME, INGESTER_PASSWORD)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(
        f"$share/{GROUP}/{TELEMETRY_FILTER}", options=SubscribeOptions(qos=1)
    )
    client.on_subscribe = lambda *_: ready.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    done.wait(600)
    client.disconnect()
    client.loop_stop()


def _publish(host: str, port: int, devices: Devices) -> list[Published]:
    """Every device's messages from processes of their own, all starting in 1 s."""
    start_at = time.monotonic() + 1.0
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(devices.devices), mp_context=context) as pool:
        futures = [
            pool.submit(functools.partial(publish_all, host, port, device, start_at))
            for device in devices.devices
        ]
        return [future.result() for future in futures]


@dataclass(frozen=True)
class Rate:
    messages: int
    values: int
    seconds: float
    publish_seconds: float  # first publish to last PUBACK

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def values_per_s(self) -> float:
        return self.values / self.seconds


def _check(published: Sequence[Published], devices: Devices) -> float:
    if sum(p.accepted for p in published) != devices.messages or any(p.failed for p in published):
        raise RuntimeError(f"the broker did not accept every message: {published}")
    return max(p.last_acked for p in published) - min(p.first_sent for p in published)


def reference(workdir: Path, devices: Devices) -> Rate:
    with persistent_mosquitto(workdir / "mosquitto-reference", devices.entries) as broker:
        context = multiprocessing.get_context("fork")
        ready, results = context.Event(), context.Queue()
        consumer = context.Process(
            target=_subscriber, args=(broker.host, broker.port, devices.messages, ready, results)
        )
        consumer.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("the reference subscriber did not subscribe")
            published = _publish(broker.host, broker.port, devices)
            finished: float = results.get(timeout=600)
        finally:
            consumer.join(timeout=30)
            if consumer.is_alive():
                consumer.kill()
    publish_seconds = _check(published, devices)
    first = min(p.first_sent for p in published)
    return Rate(devices.messages, devices.values, finished - first, publish_seconds)


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            (count,) = conn.execute("SELECT count(*) FROM points").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(count)


def through_outpost(workdir: Path, url: str, devices: Devices, probe: bytes) -> Rate:
    """``probe`` (one more message of the first device, one value) is sent until it is
    stored: then the ingester's subscription is in place."""
    data_dir = workdir / "mqtt-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "telemetry.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with (
        persistent_mosquitto(workdir / "mosquitto-outpost", devices.entries) as broker,
        running_ingester(
            broker, url, data_dir, client_id="bench-ingester", name="bench"
        ) as ingester,
    ):
        first = devices.devices[0]
        prober = Publisher(broker.host, broker.port, first.gateway, first.secret)
        prober.connect()
        try:
            deadline = time.monotonic() + 60
            while _stored(path) < 1:
                if time.monotonic() > deadline or ingester.process.poll() is not None:
                    raise RuntimeError(f"the ingester stored nothing:\n{ingester.log_tail()}")
                prober.publish(0, probe)
                time.sleep(0.5)
        finally:
            prober.close()
        expected = 1 + devices.values
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=len(devices.devices), mp_context=context) as pool:
            start_at = time.monotonic() + 1.0
            futures = [
                pool.submit(
                    functools.partial(publish_all, broker.host, broker.port, device, start_at)
                )
                for device in devices.devices
            ]
            deadline = start_at + 600
            while _stored(path) < expected:
                if time.monotonic() > deadline or ingester.process.poll() is not None:
                    raise RuntimeError(
                        f"{_stored(path):,} of {expected:,} values stored:\n{ingester.log_tail()}"
                    )
                time.sleep(0.02)
            finished = time.monotonic()
            published = [future.result() for future in futures]
    publish_seconds = _check(published, devices)
    first_sent = min(p.first_sent for p in published)
    return Rate(devices.messages, devices.values, finished - first_sent, publish_seconds)

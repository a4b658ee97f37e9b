"""MQTT load for the kill -9 test and the telemetry bench: a private Mosquitto with
persistence on, a QoS 1 publisher that records which messages the broker accepted,
and ``outpost ingest-mqtt`` as a subprocess in a process group of its own.

The broker is configured like ``support.mosquitto`` (Outpost's own password and ACL
files, unlimited in-flight and queued messages), plus ``persistence true`` in the
given directory, as ``connectivity/mosquitto.py`` recommends for production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from support.mosquitto import (
    INGESTER_PASSWORD,
    INGESTER_USERNAME,
    MOSQUITTO,
    Broker,
    running_mosquitto,
)
from support.server import outpost_command, stop


@contextmanager
def persistent_mosquitto(
    directory: Path, entries: Sequence[tuple[str, str]] = ()
) -> Iterator[Broker]:
    """A private broker on a free loopback port, persistence on, files for ``entries``."""
    if not MOSQUITTO:
        raise RuntimeError("no mosquitto binary (apt-get install mosquitto)")
    with running_mosquitto(directory, entries, persistent=True) as broker:
        yield broker


# --- the publisher -----------------------------------------------------------------------------


@dataclass
class Publisher:
    """One device's MQTT v5 connection publishing at QoS 1 with ``inflight`` messages
    unacknowledged at most; ``accepted`` holds the numbers of the messages the broker
    answered with a successful PUBACK."""

    host: str
    port: int
    username: str
    password: str
    inflight: int = 20
    published: int = 0
    accepted: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    first_sent: float = 0.0
    last_acked: float = 0.0
    _numbers: dict[int, int] = field(default_factory=dict)  # mid -> message number
    _early: dict[int, ReasonCode] = field(default_factory=dict)  # mid -> answer
    _answered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Condition = field(init=False)
    _client: mqtt.Client = field(init=False)

    def __post_init__(self) -> None:
        self._done = threading.Condition(self._lock)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{self.username}-{os.getpid()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(self.username, self.password)
        client.max_inflight_messages_set(self.inflight)
        client.max_queued_messages_set(0)
        client.on_publish = self._on_publish
        self._client = client

    def connect(self) -> None:
        connected = threading.Event()
        self._client.on_connect = lambda *_args: connected.set()
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not connected.wait(10):
            raise RuntimeError(f"{self.username} could not connect to the broker")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def topic(self) -> str:
        return f"outpost/devices/{self.username}/telemetry"

    def publish(self, number: int, payload: bytes) -> None:
        """Queue message ``number``; paho sends it once fewer than ``inflight`` wait.

        paho's network thread holds its own lock while it calls ``on_publish``, so
        ``publish`` (which takes that lock) is called without holding ours, and a PUBACK
        may come back before its mid is recorded here."""
        with self._lock:
            if not self.first_sent:
                self.first_sent = time.monotonic()
            self.published += 1
        info = self._client.publish(self.topic, payload, qos=1)
        with self._done:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._numbers[info.mid] = number
            else:
                self._answer(number, early)

    def wait_acknowledged(self, count: int, timeout: float) -> bool:
        """Whether ``count`` publications were answered (accepted or failed) in time."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self.answered < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    @property
    def answered(self) -> int:
        return self._answered

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        with self._done:
            number = self._numbers.pop(mid, None)
            if number is None:  # answered before publish() recorded the mid
                self._early[mid] = reason
            else:
                self._answer(number, reason)

    def _answer(self, number: int, reason: ReasonCode) -> None:
        """Record the broker's answer (the lock held)."""
        if reason.is_failure:
            self.failed[number] = str(reason)
        else:
            self.accepted.add(number)
        self.last_acked = time.monotonic()
        self._answered += 1
        self._done.notify_all()


# --- the ingester --------------------------------------------------------------------------------


@dataclass
class Ingester:
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_ingester(
    broker: Broker,
    database_url: str,
    data_dir: Path,
    *,
    client_id: str,
    name: str,
    extra_env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> Iterator[Ingester]:
    """``outpost ingest-mqtt`` against ``broker`` (its telemetry store under ``data_dir``),
    in a process group of its own; SIGTERM (then SIGKILL) on exit if still running."""
    env = {
        **os.environ,
        "OUTPOST_DATABASE_URL": database_url,
        "OUTPOST_DATA_DIR": str(data_dir),
        "OUTPOST_SECRET_KEY": "test",
        "OUTPOST_MQTT_HOST": broker.host,
        "OUTPOST_MQTT_PORT": str(broker.port),
        "OUTPOST_MQTT_USERNAME": INGESTER_USERNAME,
        "OUTPOST_MQTT_PASSWORD": INGESTER_PASSWORD,
        **(extra_env or {}),
    }
    log_path = data_dir / f"ingester-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*outpost_command(), "ingest-mqtt", "--client-id", client_id, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ingester = Ingester(process, log_path)
    try:
        yield ingester
    finally:
        if process.poll() is None:
            stop(process)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

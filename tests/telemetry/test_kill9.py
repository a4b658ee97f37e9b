"""Acknowledged telemetry survives ``kill -9``: the real server, real HTTP, real SQLite.

A loader of 4 threads sends 80 JSON batches of 500 points (40,000 points, each with its
own timestamp and a value derived from it, so every point is identifiable) and records
exactly which batches were answered 2xx. When half of them are, the whole process
group of ``outpost serve`` (gunicorn master and workers) gets SIGKILL. The server is
started again on the same data directory and port, and every point of every
acknowledged batch must be in the store with its value; unacknowledged batches may or
may not be there. The loader then resends every unacknowledged batch (writes are
idempotent), and the store must hold each of the 40,000 points exactly once.

Run with ``pytest -s`` to see the counts.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from outpost.connectivity.credentials import issue_credential, live_broker_entries
from outpost.db import Database
from outpost.demo import site_assets
from outpost.identity import service as identity
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset
from outpost.inventory.schemas import ChangeSetIn, SiteCreate
from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import SeriesQuery
from support.mosquitto import MOSQUITTO
from support.mqtt_load import Publisher, persistent_mosquitto, running_ingester
from support.server import free_port, healthy, outpost_command, stop, wait_until_ready
from support.tenants import Tenant, make_tenant

pytestmark = pytest.mark.slow

BATCHES = 80
BATCH_POINTS = 500
LOADERS = 4
KILL_AFTER_ACKED = BATCHES // 2
MS = 1_000_000  # ns


# --- the data: point i is (sensor i % n, t0 + i ms, value i + 0.25) --------------------------


@dataclass(frozen=True)
class Load:
    org_id: str
    token: str
    sensors: tuple[str, ...]
    t0_ms: int

    def point(self, index: int) -> tuple[str, int, float]:
        return self.sensors[index % len(self.sensors)], self.t0_ms + index, index + 0.25

    def body(self, batch: int) -> bytes:
        points = []
        for index in range(batch * BATCH_POINTS, (batch + 1) * BATCH_POINTS):
            asset, at_ms, value = self.point(index)
            points.append({"asset": asset, "time": at_ms, "values": {"value": value}})
        return json.dumps({"points": points}).encode()


def _prepare(db: Database) -> tuple[Load, Tenant]:
    tenant = make_tenant(db, "Kill Nine")
    with db.unit_of_work() as session:
        actor = identity.system_actor(tenant.org_id, "kill -9 test")
        (site,) = inventory.create_sites(
            session, actor, [SiteCreate(name="Plant K", code="PLT-K", timezone="UTC")]
        )
        inventory.run_changeset(
            session, actor, ChangeSetIn(operations=site_assets(site.id, 0)), dry_run=False
        )
        sensors = tuple(
            session.scalars(
                select(Asset.id).where(Asset.site_id == site.id, Asset.type == "sensor")
            )
        )
    assert len(sensors) == 24
    # An hour ago: inside the raw retention, never in the future.
    load = Load(tenant.org_id, tenant.admin, sensors, time.time_ns() // MS - 3_600_000)
    return load, tenant


# --- a server whose whole process group can be SIGKILLed ----------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def kill9(self) -> None:
        """SIGKILL to the process group: the gunicorn master and every worker at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def killable_server(database_url: str, data_dir: Path, port: int, name: str) -> Iterator[Server]:
    """``outpost serve`` (2 workers x 4 threads) in a process group of its own."""
    env = {
        **os.environ,
        "OUTPOST_DATABASE_URL": database_url,
        "OUTPOST_DATA_DIR": str(data_dir),
        "OUTPOST_SECRET_KEY": "test",
        "OUTPOST_EMBEDDED_WORKER": "false",
    }
    command = [*outpost_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "2", "--threads", "4"]
    log_path = data_dir / f"server-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail() -> str:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])

    server = Server(process, port, log_path)
    try:
        wait_until_ready(process, lambda: healthy("127.0.0.1", port), "outpost serve", tail)
        yield server
    finally:
        if process.poll() is None:
            stop(process)
        if _group_alive(process.pid):  # a worker orphaned by a failure above
            os.killpg(process.pid, signal.SIGKILL)


# --- the loader --------------------------------------------------------------------------------


@dataclass
class Loader:
    load: Load
    port: int
    pending: list[int]
    acked: set[int] = field(default_factory=set)
    refused: dict[int, int] = field(default_factory=dict)  # batch -> non-2xx status
    lock: threading.Lock = field(default_factory=threading.Lock)
    enough: threading.Event = field(default_factory=threading.Event)
    ack_at: int = KILL_AFTER_ACKED

    def run(self) -> None:
        threads = [threading.Thread(target=self._send) for _ in range(LOADERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    def _next(self) -> int | None:
        with self.lock:
            return self.pending.pop(0) if self.pending else None

    def _send(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {
            "Authorization": f"Bearer {self.load.token}",
            "Content-Type": "application/json",
        }
        try:
            while (batch := self._next()) is not None:
                try:
                    connection.request("POST", "/api/v1/telemetry", self.load.body(batch), headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    return  # the server is gone: this batch and the rest stay unacknowledged
                with self.lock:
                    if 200 <= response.status < 300:
                        self.acked.add(batch)
                        if len(self.acked) >= self.ack_at:
                            self.enough.set()
                    else:
                        self.refused[batch] = response.status
        finally:
            connection.close()


def _stored(store: SQLiteTelemetryStore, load: Load) -> dict[int, float]:
    """Every stored point of the test, by index."""
    start_ns = load.t0_ms * MS
    query = SeriesQuery(
        load.org_id,
        load.sensors,
        ("value",),
        start_ns,
        start_ns + BATCHES * BATCH_POINTS * MS,
        limit=10 * BATCHES * BATCH_POINTS,
    )
    found: dict[int, float] = {}
    for series in store.query(query):
        for time_ns, value in zip(series.times_ns, series.values, strict=True):
            index = time_ns // MS - load.t0_ms
            assert index not in found, f"point {index} stored twice"
            found[index] = value
    return found


def _missing(found: dict[int, float], load: Load, batches: set[int]) -> list[int]:
    """Indexes of points of ``batches`` that are absent or hold another value."""
    wrong = []
    for batch in sorted(batches):
        for index in range(batch * BATCH_POINTS, (batch + 1) * BATCH_POINTS):
            if found.get(index) != load.point(index)[2]:
                wrong.append(index)
    return wrong


def test_acknowledged_http_points_survive_kill_9_of_the_server(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    load, _ = _prepare(db)
    port = free_port()
    telemetry_file = tmp_path / "telemetry.db"

    loader = Loader(load, port, list(range(BATCHES)))
    with killable_server(database_url, tmp_path, port, "first") as server:
        feeding = threading.Thread(target=loader.run)
        feeding.start()
        assert loader.enough.wait(timeout=40), f"too few acks: {len(loader.acked)}"
        server.kill9()
        feeding.join(timeout=40)
        assert not feeding.is_alive()
    acked = set(loader.acked)
    assert not loader.refused, f"non-2xx answers: {loader.refused}"
    assert len(acked) * BATCH_POINTS >= 20_000
    unacked = set(range(BATCHES)) - acked
    assert unacked, "the kill came after the last batch: nothing was in flight"

    with killable_server(database_url, tmp_path, port, "second"):
        store = SQLiteTelemetryStore(telemetry_file)
        try:
            found = _stored(store, load)
            lost = _missing(found, load, acked)
            assert not lost, f"{len(lost)} acknowledged point(s) lost, first {lost[:10]}"
            extra = {i // BATCH_POINTS for i in found} - acked
            print(
                f"\nacknowledged {len(acked)} batches ({len(acked) * BATCH_POINTS:,} points), "
                f"0 lost; {len(found) - len(acked) * BATCH_POINTS:,} points of "
                f"{len(extra)} unacknowledged batch(es) stored too"
            )

            # The rest, resent after the restart: every point exactly once.
            resend = Loader(load, port, sorted(unacked), ack_at=len(unacked))
            resend.run()
            assert resend.acked == unacked, f"refused after the restart: {resend.refused}"
            found = _stored(store, load)
            assert len(found) == BATCHES * BATCH_POINTS
            assert not _missing(found, load, set(range(BATCHES)))
        finally:
            store.close()


# --- MQTT: kill -9 of outpost ingest-mqtt ---------------------------------------------------------

MQTT_MESSAGES = 400
MQTT_POINTS = 50  # per message: 20,000 points in all
KILL_AFTER_STORED = 5_000


def _message(load: Load, number: int) -> bytes:
    points = []
    for index in range(number * MQTT_POINTS, (number + 1) * MQTT_POINTS):
        asset, at_ms, value = load.point(index)
        points.append({"asset": asset, "time": at_ms, "values": {"value": value}})
    return json.dumps({"points": points}).encode()


def _gateway_credential(db: Database, tenant: Tenant) -> tuple[str, str, list[tuple[str, str]]]:
    """A credential of the site's gateway (it writes for every asset below it), and the
    broker's password-file entries."""
    with db.unit_of_work() as session:
        gateway = session.scalars(
            select(Asset.id).where(Asset.org_id == tenant.org_id, Asset.type == "gateway")
        ).one()
        issued = issue_credential(session, tenant.admin_actor, gateway)
    with db.unit_of_work() as session:
        entries = live_broker_entries(session)
    return gateway, issued.secret, entries


def _count(telemetry_file: Path) -> int:
    """Raw points in the store file (a read-only look, for progress only)."""
    if not telemetry_file.exists():
        return 0
    with closing(sqlite3.connect(f"file:{telemetry_file}?mode=ro", uri=True)) as conn:
        try:
            (count,) = conn.execute("SELECT count(*) FROM points").fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
    return int(count)


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _probe(publisher: Publisher, message: bytes, telemetry_file: Path) -> None:
    deadline = time.monotonic() + 30
    while _count(telemetry_file) < MQTT_POINTS:
        assert time.monotonic() < deadline, "the ingester never stored the probe message"
        publisher.publish(0, message)
        time.sleep(1)


def test_broker_accepted_mqtt_points_survive_kill_9_of_the_ingester(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    if not MOSQUITTO and not os.environ.get("CI"):
        pytest.skip("no mosquitto binary (apt-get install mosquitto)")
    load, tenant = _prepare(db)
    gateway, secret, entries = _gateway_credential(db, tenant)
    telemetry_file = tmp_path / "telemetry.db"
    total = MQTT_MESSAGES * MQTT_POINTS

    with persistent_mosquitto(tmp_path / "mosquitto", entries) as broker:
        publisher = Publisher(broker.host, broker.port, gateway, secret, inflight=20)
        publisher.connect()
        try:
            with running_ingester(
                broker, database_url, tmp_path, client_id="kill9-ingester", name="first"
            ) as ingester:
                # Publishing starts once the ingester's subscription is in place: message 0
                # is sent again every second until it is in the store (before the
                # subscription, the broker drops it; resending it is idempotent).
                _probe(publisher, _message(load, 0), telemetry_file)

                def publish_rest() -> None:
                    for number in range(1, MQTT_MESSAGES):
                        publisher.publish(number, _message(load, number))
                        time.sleep(0.005)  # ~200 messages/s: the kill lands mid-load

                feeding = threading.Thread(target=publish_rest)
                feeding.start()
                _wait_for(lambda: _count(telemetry_file) >= KILL_AFTER_STORED, 30, "points stored")
                ingester.kill9()
                stored_at_kill = _count(telemetry_file)
                feeding.join(timeout=30)
            assert publisher.wait_acknowledged(publisher.published, timeout=30)
            assert not publisher.failed, f"the broker refused messages: {publisher.failed}"
            accepted = set(publisher.accepted)
            assert len(accepted) == MQTT_MESSAGES
            assert stored_at_kill < total, "the kill came after the last message was stored"

            # The same client id again: the broker resends what was delivered and not
            # acknowledged, then what it queued meanwhile.
            with running_ingester(
                broker, database_url, tmp_path, client_id="kill9-ingester", name="second"
            ) as ingester:
                try:
                    _wait_for(lambda: _count(telemetry_file) >= total, 45, "every point")
                except AssertionError:
                    raise AssertionError(
                        f"{_count(telemetry_file):,} of {total:,} points stored\n"
                        + ingester.log_tail()
                    ) from None
                assert "(session resumed)" in ingester.log_tail(), ingester.log_tail()
        finally:
            publisher.close()

    store = SQLiteTelemetryStore(telemetry_file)
    try:
        found = _stored(store, load)
    finally:
        store.close()
    wrong = [
        index
        for number in sorted(accepted)
        for index in range(number * MQTT_POINTS, (number + 1) * MQTT_POINTS)
        if found.get(index) != load.point(index)[2]
    ]
    assert not wrong, f"{len(wrong)} broker-accepted point(s) lost, first {wrong[:10]}"
    assert len(found) == total  # each exactly once: nothing beyond what was published
    print(
        f"\nMQTT: {len(accepted)} messages ({total:,} points) accepted by the broker, "
        f"{stored_at_kill:,} points stored at the kill, all {total:,} stored once after restart"
    )

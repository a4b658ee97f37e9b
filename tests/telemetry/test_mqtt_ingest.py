"""MQTT ingestion through a real, private Mosquitto: broker identity, the ingester end to
end into a real store, acknowledgement only after the durable write, redelivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from sqlalchemy import event

from fleet import Fleet, build_fleet
from outpost.connectivity.credentials import live_broker_entries
from outpost.connectivity.mosquitto import acl_file, password_file
from outpost.db import Database
from outpost.telemetry.mqtt_ingest import MqttIngester, MqttOptions
from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import Point, SeriesQuery, StoreUnavailable, TelemetryStore
from support.mosquitto import INGESTER_PASSWORD, INGESTER_USERNAME, Broker
from support.tenants import Tenant

#: A guard against a hang, not a performance threshold.
PATIENCE_S = 30.0
SECOND = 1_000_000_000


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


class Peer:
    """A plain MQTT v5 client (a device, or an observer) on the test broker."""

    def __init__(self, broker: Broker, username: str, password: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(username, password)
        self.connected = threading.Event()
        self.connect_reason: Any = None
        self.received: list[tuple[str, bytes]] = []
        self.acks: dict[int, Any] = {}
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.append(
            (msg.topic, bytes(msg.payload))
        )
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.connected.wait(PATIENCE_S)

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connect_reason = reason
        self.connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        self.acks[mid] = reason

    @property
    def accepted(self) -> bool:
        return not self.connect_reason.is_failure

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(PATIENCE_S)

    def publish(self, topic: str, payload: bytes | str) -> Any:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        _eventually(lambda: info.mid in self.acks, f"PUBACK of {topic}")
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def peer(broker: Broker, username: str, password: str) -> Iterator[Peer]:
    client = Peer(broker, username, password)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fleet(client: FlaskClient, tenant: Tenant) -> Fleet:
    return build_fleet(client, tenant.headers())


def _issue(client: FlaskClient, tenant: Tenant, asset_id: str) -> str:
    response = client.post(f"/api/v1/assets/{asset_id}/credentials", headers=tenant.headers())
    assert response.status_code == 201, response.get_json()
    secret: str = response.get_json()["secret"]
    return secret


def _entries(db: Database) -> list[tuple[str, str]]:
    with db.unit_of_work(write=False) as session:
        return live_broker_entries(session)


def _topic(asset_id: str, kind: str = "telemetry") -> str:
    return f"outpost/devices/{asset_id}/{kind}"


def _now_s() -> int:
    return time.time_ns() // SECOND


# -- the generated files ------------------------------------------------------------------


def test_password_file_has_the_ingester_and_one_line_per_credential() -> None:
    text = password_file(
        [("ast_a", "$7$101$c2FsdA==$aGFzaA==")],
        ingester_username="ingest",
        ingester_password="pw",
    )
    lines = text.splitlines()
    assert lines[0].startswith("ingest:$7$101$")
    assert lines[1] == "ast_a:$7$101$c2FsdA==$aGFzaA=="


@pytest.mark.parametrize(
    ("entries", "ingester_password"),
    [
        ([("ast:x", "$7$1$a$b")], "pw"),  # ":" would end the username
        ([("ast/+", "$7$1$a$b")], "pw"),  # would widen the %u of an ACL pattern
        ([("ingest", "$7$1$a$b")], "pw"),  # a device posing as the ingester
        ([("ast_a", "plain")], "pw"),  # not a broker hash
        ([], ""),  # the ingester needs a password
    ],
)
def test_password_file_refuses_what_would_break_identity(
    entries: list[tuple[str, str]], ingester_password: str
) -> None:
    with pytest.raises(ValueError):
        password_file(entries, ingester_username="ingest", ingester_password=ingester_password)


def test_acl_confines_devices_to_their_own_topic() -> None:
    text = acl_file("ingest")
    assert "pattern write outpost/devices/%u/telemetry\n" in text
    assert "user ingest\ntopic read outpost/devices/+/telemetry\n" in text
    assert "topic read $share/+/outpost/devices/+/telemetry\n" in text


# -- the broker enforces identity ----------------------------------------------------------


def test_broker_enforces_device_identity(
    mosquitto: Broker, db: Database, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    inverter, meter = fleet.inverter["id"], fleet.meter["id"]
    inverter_secret = _issue(client, tenant, inverter)
    _issue(client, tenant, meter)
    mosquitto.update(_entries(db))

    with (
        peer(mosquitto, INGESTER_USERNAME, INGESTER_PASSWORD) as observer,
        peer(mosquitto, inverter, inverter_secret) as device,
    ):
        assert device.accepted
        observer.subscribe("outpost/devices/+/telemetry")

        own = device.publish(_topic(inverter), b"own")
        foreign = device.publish(_topic(meter), b"spoofed")
        device.publish(_topic(inverter), b"marker")  # in order after the spoofed one

        assert not own.is_failure
        assert foreign.is_failure  # MQTT v5: PUBACK "Not authorized"
        _eventually(lambda: len(observer.received) >= 2, "the marker")
        assert observer.received == [(_topic(inverter), b"own"), (_topic(inverter), b"marker")]


def test_broker_refuses_a_wrong_password_and_unknown_users(
    mosquitto: Broker, db: Database, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    inverter = fleet.inverter["id"]
    secret = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))

    with peer(mosquitto, inverter, secret + "x") as wrong:
        assert not wrong.accepted
    with peer(mosquitto, fleet.meter["id"], secret) as unknown:  # no credential of its own
        assert not unknown.accepted


def test_a_rotated_credential_is_refused_after_regeneration_and_sighup(
    mosquitto: Broker, db: Database, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    inverter = fleet.inverter["id"]
    old = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))
    with peer(mosquitto, inverter, old) as device:
        assert device.accepted

    new = _issue(client, tenant, inverter)  # rotation revokes the old one
    mosquitto.update(_entries(db))

    with peer(mosquitto, inverter, old) as device:
        assert not device.accepted
    with peer(mosquitto, inverter, new) as device:
        assert device.accepted


# -- the ingester --------------------------------------------------------------------------


class FailingStore:
    """A store that cannot take anything (a stand-in for a down InfluxDB)."""

    def __init__(self, inner: TelemetryStore) -> None:
        self.inner = inner
        self.attempts = 0

    def write(self, points: Sequence[Point]) -> None:
        self.attempts += 1
        raise StoreUnavailable("down for the test", retry_after=1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CrashAfterWrite:
    """Writes for real, then kills the ingester before it can acknowledge."""

    def __init__(self, inner: TelemetryStore) -> None:
        self.inner = inner
        self.ingester: MqttIngester | None = None
        self.writes = 0

    def write(self, points: Sequence[Point]) -> None:
        self.inner.write(points)
        self.writes += 1
        assert self.ingester is not None
        self.ingester.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class GatedStore:
    """Writes for real, but each write first waits until the test opens its gate."""

    def __init__(self, inner: TelemetryStore) -> None:
        self.inner = inner
        self.writes: list[list[Point]] = []  # as called, in order
        self.returned = 0  # writes that have returned
        self._gates = [threading.Event() for _ in range(10)]

    def write(self, points: Sequence[Point]) -> None:
        gate = self._gates[len(self.writes)]
        self.writes.append(list(points))
        assert gate.wait(PATIENCE_S), "the test never opened the gate"
        self.inner.write(points)
        self.returned += 1

    def open(self, write: int) -> None:
        self._gates[write].set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextmanager
def running_ingester(
    broker: Broker, db: Database, store: Any, client_id: str = "ingest-test", **options: Any
) -> Iterator[MqttIngester]:
    ingester = MqttIngester(
        MqttOptions(
            host=broker.host,
            port=broker.port,
            username=INGESTER_USERNAME,
            password=INGESTER_PASSWORD,
            client_id=client_id,
            **{"batch_wait_ms": 20, **options},
        ),
        db,
        store,
    )
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    try:
        assert ingester.wait_subscribed(PATIENCE_S), broker.log_tail()
        yield ingester
    finally:
        ingester.stop()
        thread.join(PATIENCE_S)
        assert not thread.is_alive()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteTelemetryStore]:
    store = SQLiteTelemetryStore(tmp_path / "telemetry.db")
    yield store
    store.close()


def _points(store: TelemetryStore, org_id: str, asset_id: str, metric: str) -> list[float]:
    series = store.query(SeriesQuery(org_id, (asset_id,), (metric,), 0, (_now_s() + 3600) * SECOND))
    return [value for one in series for value in one.values]


def test_json_and_line_protocol_messages_reach_the_store(
    mosquitto: Broker,
    db: Database,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    sqlite_store: SQLiteTelemetryStore,
) -> None:
    inverter = fleet.inverter["id"]
    secret = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))
    now = _now_s()
    document = {"points": [{"asset": inverter, "time": now * 1000, "values": {"ac_power_kw": 1.5}}]}
    line = f"inverter,asset={inverter} ac_power_kw=2.5,dc_voltage_v=600 {(now + 1) * SECOND}"

    with (
        running_ingester(mosquitto, db, sqlite_store) as ingester,
        peer(mosquitto, inverter, secret) as device,
    ):
        device.publish(_topic(inverter), json.dumps(document))
        device.publish(_topic(inverter), line)
        _eventually(lambda: ingester.stats.messages == 2, "both messages ingested")

    assert ingester.stats.points == 3
    assert _points(sqlite_store, tenant.org_id, inverter, "ac_power_kw") == [1.5, 2.5]
    assert _points(sqlite_store, tenant.org_id, inverter, "dc_voltage_v") == [600.0]


def test_a_refused_message_is_acknowledged_and_explained_to_the_device(
    mosquitto: Broker,
    db: Database,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    sqlite_store: SQLiteTelemetryStore,
) -> None:
    inverter, meter = fleet.inverter["id"], fleet.meter["id"]
    secret = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))
    now_ms = _now_s() * 1000
    good = {"points": [{"asset": inverter, "time": now_ms, "values": {"ac_power_kw": 3.0}}]}
    invalid = {"points": [{"asset": inverter, "time": now_ms, "values": {"ac_power_kw": 1e9}}]}
    foreign = {"points": [{"asset": meter, "time": now_ms, "values": {"active_power_w": 1.0}}]}

    with (
        running_ingester(mosquitto, db, sqlite_store) as ingester,
        peer(mosquitto, inverter, secret) as device,
    ):
        device.subscribe(_topic(inverter, "errors"))
        for body in (invalid, foreign, good):
            device.publish(_topic(inverter), json.dumps(body))
        device.publish(_topic(inverter), b"not line protocol")
        _eventually(lambda: ingester.stats.messages == 4, "all four messages handled")
        _eventually(lambda: len(device.received) == 3, "three error reports")

    assert ingester.stats.refused == 3
    errors = [json.loads(payload) for _topic_name, payload in device.received]
    assert [e["error"] for e in errors] == ["validation-failed", "forbidden", "malformed"]
    assert errors[0]["errors"][0]["code"] == "telemetry.out_of_range"
    assert errors[1]["errors"][0]["code"] == "telemetry.asset_forbidden"
    assert errors[2]["errors"][0]["code"] == "telemetry.malformed_line"
    # The good message of the same batch was stored, the meter got nothing.
    assert _points(sqlite_store, tenant.org_id, inverter, "ac_power_kw") == [3.0]
    assert _points(sqlite_store, tenant.org_id, meter, "active_power_w") == []


def test_unacknowledged_messages_are_redelivered_to_the_next_ingester(
    mosquitto: Broker,
    db: Database,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    sqlite_store: SQLiteTelemetryStore,
) -> None:
    """The store is down: the first ingester keeps retrying and acknowledges nothing,
    then dies. Its replacement (same client id) gets every message again."""
    inverter = fleet.inverter["id"]
    secret = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))
    now = _now_s()
    failing = FailingStore(sqlite_store)

    with peer(mosquitto, inverter, secret) as device:
        with running_ingester(mosquitto, db, failing) as first:
            for offset in range(5):
                line = f"inverter,asset={inverter} ac_power_kw={offset} {(now + offset) * SECOND}"
                device.publish(_topic(inverter), line)
            _eventually(lambda: failing.attempts >= 2, "the first ingester retrying")
            first.abort()
        assert first.stats.messages == 0

        with running_ingester(mosquitto, db, sqlite_store) as second:
            _eventually(lambda: second.stats.messages == 5, "the redelivered messages")

    assert _points(sqlite_store, tenant.org_id, inverter, "ac_power_kw") == [0, 1, 2, 3, 4]


def test_a_redelivered_batch_leaves_the_points_identical(
    mosquitto: Broker,
    db: Database,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    sqlite_store: SQLiteTelemetryStore,
) -> None:
    """The first ingester stores the batch and dies before acknowledging it: the second
    stores it again, and the store holds each point once, unchanged."""
    inverter = fleet.inverter["id"]
    secret = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))
    now = _now_s()
    crashing = CrashAfterWrite(sqlite_store)
    lines = "\n".join(
        f"inverter,asset={inverter} ac_power_kw={i}.5,dc_voltage_v={600 + i} {(now + i) * SECOND}"
        for i in range(10)
    )

    with peer(mosquitto, inverter, secret) as device:
        first = MqttIngester(
            MqttOptions(
                host=mosquitto.host,
                port=mosquitto.port,
                username=INGESTER_USERNAME,
                password=INGESTER_PASSWORD,
                client_id="ingest-test",
            ),
            db,
            crashing,
        )
        crashing.ingester = first
        thread = threading.Thread(target=first.run, daemon=True)
        thread.start()
        assert first.wait_subscribed(PATIENCE_S)
        device.publish(_topic(inverter), lines)
        thread.join(PATIENCE_S)
        assert crashing.writes == 1 and first.stats.messages == 0
        stored = _points(sqlite_store, tenant.org_id, inverter, "ac_power_kw")

        with running_ingester(mosquitto, db, sqlite_store) as second:
            _eventually(lambda: second.stats.messages == 1, "the redelivered message")

    assert stored == [i + 0.5 for i in range(10)]
    assert _points(sqlite_store, tenant.org_id, inverter, "ac_power_kw") == stored
    assert _points(sqlite_store, tenant.org_id, inverter, "dc_voltage_v") == [
        600.0 + i for i in range(10)
    ]


def test_acknowledgements_follow_each_durable_write_in_order_while_the_next_batch_is_prepared(
    mosquitto: Broker,
    db: Database,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    sqlite_store: SQLiteTelemetryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batch 1 is stuck in its store write while batch 2 arrives and is prepared (its
    sender looked up in the database): nothing is acknowledged until write 1 returns,
    then only batch 1, and batch 2 only once write 2 has returned."""
    inverter = fleet.inverter["id"]
    secret = _issue(client, tenant, inverter)
    mosquitto.update(_entries(db))
    now = _now_s()
    gated = GatedStore(sqlite_store)
    acks: list[int] = []  # for each PUBACK the ingester sends: the writes returned by then
    real_ack = mqtt.Client.ack

    def ack(self: mqtt.Client, mid: int, qos: int) -> MQTTErrorCode:
        acks.append(gated.returned)
        return real_ack(self, mid, qos)

    monkeypatch.setattr(mqtt.Client, "ack", ack)
    lookups: list[str] = []

    def on_query(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "device_credentials" in statement:
            lookups.append(statement)

    def line(offset: int) -> str:
        return f"inverter,asset={inverter} ac_power_kw={offset} {(now + offset) * SECOND}"

    event.listen(db.read_engine, "before_cursor_execute", on_query)
    try:
        with (
            running_ingester(
                mosquitto, db, gated, batch_wait_ms=300, device_cache_s=0.0
            ) as ingester,
            peer(mosquitto, inverter, secret) as device,
        ):
            device.publish(_topic(inverter), line(0))
            _eventually(lambda: len(gated.writes) == 1, "write 1 under way")
            looked_up = len(lookups)
            device.publish(_topic(inverter), line(1))
            device.publish(_topic(inverter), line(2))
            _eventually(lambda: len(lookups) > looked_up, "batch 2 being prepared")
            time.sleep(0.3)
            assert acks == [] and ingester.stats.messages == 0  # write 1 has not returned

            gated.open(0)
            _eventually(lambda: len(gated.writes) == 2, "write 2 under way")
            _eventually(lambda: len(acks) == 1, "batch 1 acknowledged")
            time.sleep(0.3)
            assert acks == [1]  # after write 1 returned; batch 2 waits for write 2
            assert ingester.stats.messages == 1
            assert sorted(point.value for point in gated.writes[1]) == [1.0, 2.0]

            gated.open(1)
            _eventually(lambda: ingester.stats.messages == 3, "batch 2 acknowledged")
    finally:
        event.remove(db.read_engine, "before_cursor_execute", on_query)

    assert acks == [1, 2, 2]
    assert ingester.stats.batches == 2
    assert _points(sqlite_store, tenant.org_id, inverter, "ac_power_kw") == [0.0, 1.0, 2.0]

"""The demo simulator: the value model (pure, table-driven), the sending loop against a
small HTTP server of our own, and one run of ``outpost simulate`` against the real server."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from outpost import demo
from outpost.db import Database
from outpost.identity.models import ApiToken
from outpost.settings import Settings
from outpost.telemetry import simulator_model
from outpost.telemetry.metrics import find_metric, metrics_of
from outpost.telemetry.simulator import (
    Connection,
    Fatal,
    Simulator,
    Stats,
    batches_of,
    deliver,
)
from outpost.telemetry.simulator_model import SimAsset, describe, readings
from outpost.telemetry.store import open_telemetry_store
from support.server import outpost_command, running_server

HOUR = 3600
DAY = 86_400


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def asset(
    asset_type: str,
    timezone: str = "Europe/Paris",
    config: dict[str, Any] | None = None,
    asset_id: str = "ast_1",
) -> SimAsset:
    described = describe(asset_id, asset_type, config or {}, "sit_1", timezone)
    assert described is not None
    return described


INVERTER = {"rated_power_kw": 50.0}

# --- the model ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "offset_s"),
    [
        ("Europe/Paris", HOUR),
        ("Europe/Madrid", HOUR),
        ("Africa/Casablanca", HOUR),
        ("America/New_York", -5 * HOUR),
        ("Asia/Singapore", 8 * HOUR),
        ("UTC", 0),
        ("Not/AZone", 0),
    ],
)
def test_the_sun_keeps_each_zones_standard_time(timezone: str, offset_s: int) -> None:
    assert simulator_model.standard_offset_s(timezone) == offset_s


@pytest.mark.parametrize(
    ("timezone", "at", "producing"),
    [
        ("Europe/Paris", "2026-01-15T00:00:00", False),  # 01:00 local
        ("Europe/Paris", "2026-01-15T04:59:59", False),  # 05:59:59 local
        ("Europe/Paris", "2026-01-15T11:00:00", True),  # noon
        ("Europe/Paris", "2026-07-15T11:00:00", True),  # noon of standard time, in summer
        ("Europe/Paris", "2026-01-15T17:00:00", False),  # 18:00 local
        ("Europe/Paris", "2026-01-15T22:00:00", False),
        ("Asia/Singapore", "2026-01-15T04:00:00", True),  # noon in Singapore
        ("Asia/Singapore", "2026-01-15T12:00:00", False),  # 20:00 in Singapore
        ("America/New_York", "2026-01-15T12:00:00", True),  # 07:00: a little
        ("America/New_York", "2026-01-15T17:00:00", True),
        ("America/New_York", "2026-01-15T05:00:00", False),  # midnight
    ],
)
def test_inverters_follow_the_sun_of_their_site(timezone: str, at: str, producing: bool) -> None:
    values = readings(asset("inverter", timezone, INVERTER), utc(at))
    assert values is not None
    if producing:
        assert values["ac_power_kw"] > 0 and values["dc_voltage_v"] > 500
    else:
        assert values["ac_power_kw"] == 0.0 and values["dc_voltage_v"] == 0.0


@pytest.mark.parametrize("rated_kw", [5.0, 50.0, 250.0])
def test_noon_production_is_scaled_by_the_rated_power(rated_kw: float) -> None:
    inverter = asset("inverter", config={"rated_power_kw": rated_kw})
    noons = [utc(f"2026-01-{day:02d}T11:00:00") for day in range(1, 29)]
    powers = [float(readings(inverter, noon)["ac_power_kw"]) for noon in noons]
    # clouds take up to 40%, the inverter's own jitter ±3%
    assert all(rated_kw * 0.6 * 0.97 <= power <= rated_kw * 1.03 for power in powers)
    assert len(set(powers)) > 20  # cloudy and sunny noons


def test_a_night_is_dark_all_night_long() -> None:
    inverter = asset("inverter", config=INVERTER)
    night = range(utc("2026-03-10T17:00:00"), utc("2026-03-11T05:00:00"), 60)  # 18:00-06:00
    assert {readings(inverter, t)["ac_power_kw"] for t in night} == {0.0}


@pytest.mark.parametrize(
    ("asset_type", "config", "counter"),
    [
        ("inverter", INVERTER, "energy_total_kwh"),
        ("inverter", {"rated_power_kw": 3.5}, "energy_total_kwh"),
        ("meter", {}, "energy_import_kwh"),
        ("gateway", {}, "uptime_s"),
    ],
)
@pytest.mark.parametrize("timezone", ["Europe/Paris", "America/New_York", "Asia/Singapore"])
def test_counters_never_go_down_over_a_simulated_day(
    asset_type: str, config: dict[str, Any], counter: str, timezone: str
) -> None:
    device = asset(asset_type, timezone, config)
    start = utc("2026-06-01T00:00:00")
    values = [readings(device, t)[counter] for t in range(start, start + DAY + 1, 10)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert values[-1] > values[0]


def test_a_day_of_production_is_the_integral_of_the_mean_curve() -> None:
    inverter = asset("inverter", config=INVERTER)
    midnight = utc("2026-06-01T23:00:00")  # local midnight in Paris
    produced = simulator_model.inverter_energy_kwh(inverter, midnight + DAY)
    produced -= simulator_model.inverter_energy_kwh(inverter, midnight)
    assert produced == pytest.approx(50.0 * simulator_model.MEAN_CLOUD * 6.0)  # 6 h at full power
    # and the mean of the noisy power over the day matches it within a few percent
    powers = [
        float(readings(inverter, t)["ac_power_kw"]) for t in range(midnight, midnight + DAY, 60)
    ]
    assert sum(powers) / 60 == pytest.approx(produced, rel=0.1)


def test_a_restart_continues_the_counters_where_they_were() -> None:
    at = utc("2026-11-23T10:00:00")
    before = readings(asset("inverter", config=INVERTER), at)
    after = readings(asset("inverter", config=INVERTER), at)  # described afresh
    assert before == after
    assert asset("inverter", asset_id="ast_1") != asset("inverter", asset_id="ast_2")


def _day(device: SimAsset, every_s: int = 300, step_s: int = 300) -> list[dict[str, Any]]:
    """The readings of a Monday every ``step_s`` by a simulator ticking every ``every_s``."""
    start = utc("2026-11-23T00:00:00")
    found = [readings(device, t, every_s) for t in range(start, start + DAY, step_s)]
    return [values for values in found if values is not None]


FLEET = [
    ("inverter", INVERTER),
    ("inverter", {"rated_power_kw": 900.0}),
    ("meter", {"modbus_address": 1, "ct_ratio": 200, "phases": 3}),
    ("gateway", {}),
    ("controller", {"channels": 16}),
    ("badge_reader", {"door": "Door 1"}),
    ("sensor", {"kind": "unknown", "unit": "?"}),
    *[("sensor", {"kind": kind, "unit": unit}) for kind, unit, _ in demo.SENSOR_KINDS],
]


@pytest.mark.parametrize(("asset_type", "config"), FLEET)
@pytest.mark.parametrize("timezone", demo.TIMEZONES)
def test_every_value_is_declared_and_in_range(
    asset_type: str, config: dict[str, Any], timezone: str
) -> None:
    declared = {metric.name for metric in metrics_of(asset_type)}
    for every_s in (1, 300):
        for values in _day(asset(asset_type, timezone, config), every_s, step_s=61):
            assert set(values) == declared
            for name, value in values.items():
                metric = find_metric(asset_type, name)
                assert metric is not None
                expected = {"float": float, "int": int, "bool": bool}[metric.value_type]
                assert type(value) is expected, (name, value)
                assert metric.minimum <= value <= metric.maximum, (name, value)


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [
        ("temperature", -30, 50),
        ("humidity", 5, 100),
        ("pressure", 950, 1050),
        ("wind_speed", 0, 40),
        ("irradiance", 0, 1400),
        ("door_contact", 0, 1),
    ],
)
def test_sensors_read_plausible_values_of_their_kind(kind: str, low: float, high: float) -> None:
    for timezone in demo.TIMEZONES:
        day = [v["value"] for v in _day(asset("sensor", timezone, {"kind": kind}), 60, 60)]
        assert all(low <= value <= high for value in day)
        assert len(set(day)) > 1


def test_temperature_follows_a_daily_cycle() -> None:
    sensor = asset("sensor", "Europe/Paris", {"kind": "temperature", "unit": "degC"})
    for day in range(1, 29):
        afternoon = readings(sensor, utc(f"2026-02-{day:02d}T14:00:00"))  # 15:00 local
        dawn = readings(sensor, utc(f"2026-02-{day:02d}T03:00:00"))  # 04:00 local
        assert afternoon is not None and dawn is not None
        assert afternoon["value"] > dawn["value"] + 8


def test_meters_hold_the_voltage_and_load_up_in_working_hours() -> None:
    meter = asset("meter")
    day = _day(meter, 60, 60)
    assert all(225 <= values["voltage_l1_v"] <= 235 for values in day)
    noon = readings(meter, utc("2026-11-23T12:00:00"))
    night = readings(meter, utc("2026-11-23T02:00:00"))
    assert noon is not None and night is not None
    assert noon["active_power_w"] > 1.5 * night["active_power_w"]


def test_badge_readers_report_now_and_then_in_working_hours_only() -> None:
    reader = asset("badge_reader")
    monday = utc("2026-11-23T00:00:00")  # local 01:00
    ticks = {
        t: readings(reader, t, 10) for t in range(monday - 2 * DAY, monday + DAY, 10)
    }  # Saturday, Sunday and Monday
    events = {t: values for t, values in ticks.items() if values is not None}
    assert events and len(events) < len(ticks) / 10
    for t in events:
        local = datetime.fromtimestamp(t + 3600, UTC)
        assert local.weekday() < 5 and 8 <= local.hour < 18
    granted = [values["access_granted"] for values in events.values()]
    assert granted.count(True) > granted.count(False) > 0


def test_types_without_metrics_are_not_simulated() -> None:
    assert describe("ast_1", "badge", {"holder": "A"}, "sit_1", "Europe/Paris") is None
    assert describe("ast_1", "teleporter", {}, "sit_1", "Europe/Paris") is None


def test_a_tick_is_split_into_batches_of_json_points() -> None:
    fleet = [asset("sensor", asset_id=f"ast_{n}") for n in range(12)]
    at = utc("2026-11-23T10:00:00")
    batches = list(batches_of(fleet, at, 10, 5))
    assert [count for count, _ in batches] == [5, 5, 2]
    points = [point for _, body in batches for point in json.loads(body)["points"]]
    assert [point["asset"] for point in points] == [f"ast_{n}" for n in range(12)]
    assert {point["time"] for point in points} == {at * 1000}
    assert points[0]["values"] == readings(fleet[0], at)


# --- the sending loop, against a small HTTP server of our own -----------------------------


class FakeIngest(ThreadingHTTPServer):
    """Answers POSTs with the statuses of ``script`` in turn, then 200; keeps each body."""

    daemon_threads = True

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.bodies: list[bytes] = []
        self.headers_seen: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeIngest

    def do_GET(self) -> None:
        self._answer(200, {}, {"status": "ok"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(body)
            self.server.headers_seen.append(dict(self.headers))
            status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        if status == 200:
            self._answer(200, {}, {"accepted": len(json.loads(body)["points"])})
        else:
            self._answer(status, headers, {"title": "Busy", "detail": f"refused {status}"})

    def _answer(self, status: int, headers: dict[str, str], document: object) -> None:
        content = json.dumps(document).encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(content))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(*script: tuple[int, dict[str, str]]) -> Iterator[FakeIngest]:
    server = FakeIngest(list(script))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _deliver(server: FakeIngest) -> tuple[Stats, list[str], bool]:
    stats, said = Stats(), []
    connection = Connection(server.url, "opt_secret")
    try:
        body = b'{"points":[{"asset":"a"}]}'
        taken = deliver(connection, body, 1, stats, threading.Event(), said.append)
    finally:
        connection.close()
    return stats, said, taken


@pytest.mark.parametrize("status", [503, 429])
def test_a_busy_server_gets_the_same_batch_again_after_retry_after(status: int) -> None:
    with serving((status, {"Retry-After": "0"}), (status, {"Retry-After": "0"})) as server:
        stats, said, taken = _deliver(server)
    assert taken and said == []
    assert len(server.bodies) == 3 and len(set(server.bodies)) == 1
    assert (stats.retries, stats.points, stats.batches, stats.dropped) == (2, 1, 1, 0)
    assert {h["Authorization"] for h in server.headers_seen} == {"Bearer opt_secret"}


def test_a_refused_batch_is_reported_and_counted_never_dropped_silently() -> None:
    with serving((422, {})) as server:
        stats, said, taken = _deliver(server)
    assert taken and len(server.bodies) == 1
    assert (stats.errors, stats.dropped, stats.points) == (1, 1, 0)
    assert said == ["a batch of 1 points was refused (422): refused 422"]


def test_a_refused_token_stops_the_simulator() -> None:
    with serving((401, {})) as server, pytest.raises(Fatal, match="401"):
        _deliver(server)


def test_the_loop_sends_every_asset_each_tick_until_stopped() -> None:
    with serving() as fake_ingest:
        _loop(fake_ingest)


def _loop(fake_ingest: FakeIngest) -> None:
    fleet = [asset("inverter", config=INVERTER, asset_id=f"ast_{n}") for n in range(10)]
    said: list[str] = []
    run = Simulator(
        fleet,
        base_url=fake_ingest.url,
        token="opt_secret",
        every_s=1,
        batch=4,
        connections=2,
        progress_s=0.0,
        echo=said.append,
    )
    assert run.wait_healthy()
    thread = threading.Thread(target=run.run)
    thread.start()
    try:
        while len(fake_ingest.bodies) < 6:  # two ticks of 3 batches
            time.sleep(0.05)
    finally:
        run.stop.set()
        thread.join()
    points = [p for body in fake_ingest.bodies for p in json.loads(body)["points"]]
    by_tick: dict[int, list[str]] = {}
    for point in points:
        by_tick.setdefault(point["time"], []).append(point["asset"])
    complete = [assets for assets in by_tick.values() if len(assets) == 10]
    assert len(complete) >= 2
    assert all(sorted(assets) == sorted(a.asset_id for a in fleet) for assets in complete)
    assert all(time_ms % 1000 == 0 for time_ms in by_tick)
    assert run.stats.points == len(points) and run.stats.errors == 0
    assert said and all(line.startswith("simulate: ") and "points sent" in line for line in said)


# --- end to end: ``outpost simulate`` against the real server -----------------------------


def test_simulate_feeds_the_demo_fleet_through_the_real_server(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    with db.unit_of_work() as session:
        seeded = demo.seed_demo(session, sites=1)
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "OUTPOST_DATABASE_URL": database_url,
        "OUTPOST_DATA_DIR": str(data_dir),
        "OUTPOST_SECRET_KEY": "test",
    }
    with running_server(database_url, data_dir) as server:
        first = _simulate(server.base_url, env, stop=signal.SIGTERM, wait_for=data_dir)
        second = _simulate(server.base_url, env, stop=signal.SIGINT, wait_for=data_dir)
    for output in (first, second):
        assert "simulate: 41 assets every 1 s" in output  # 50 less 9 badges
        assert "0 errors, 0 points refused" in output
        assert "opt_" in output and output.count("opt_") == 1  # the prefix, never the secret
    store = open_telemetry_store(Settings(data_dir=data_dir, database_url=database_url))
    try:
        inverters = _assets_of(db, "inverter")
        readings_now = store.latest(seeded.org_id, inverters, ["energy_total_kwh"])
    finally:
        store.close()
    assert {r.asset_id for r in readings_now} == set(inverters)
    with db.unit_of_work() as session:
        tokens = list(session.scalars(select(ApiToken).where(ApiToken.name == "demo simulator")))
    assert len(tokens) == 2 and all(token.revoked_at is not None for token in tokens)
    assert tokens[0].permissions is not None and "telemetry.write" in tokens[0].permissions


def _assets_of(db: Database, asset_type: str) -> list[str]:
    from outpost.inventory.models import Asset

    with db.unit_of_work() as session:
        return list(session.scalars(select(Asset.id).where(Asset.type == asset_type)))


def _simulate(url: str, env: dict[str, str], *, stop: signal.Signals, wait_for: Path) -> str:
    """Run ``outpost simulate`` until two batches were accepted, then stop it with ``stop``."""
    log = wait_for / f"simulate-{stop.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*outpost_command(), "simulate", "--url", url, "--every", "1", "--batch", "30"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server_log = wait_for / "server.log"
    start = server_log.read_text().count('"POST /api/v1/telemetry HTTP/1.1" 200')
    deadline = time.monotonic() + 60
    try:
        while server_log.read_text().count('"POST /api/v1/telemetry HTTP/1.1" 200') < start + 4:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        process.send_signal(stop)
        code = process.wait(timeout=30)
    output = log.read_text()
    assert code == 0, output
    assert "simulate: stopped after" in output
    return output

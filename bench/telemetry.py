"""Issue 4, the telemetry pole, through the real server (``outpost serve``, 2 workers x 4 threads).

Runs on the SQLite engine only: the time-series store is a file (or an InfluxDB) of its
own, whatever the inventory database is. The database holds the demo fleet (500 sites,
25,000 assets; ``--quick`` 100 sites); the sender is the demo admin's API token. Its
41 assets per site that declare metrics have 68 (asset, metric) series per site,
34,000 in all; a batch is 5,000 of those values, an asset's metrics in one point.

1. Ingestion into SQLite over HTTP, JSON (``POST /api/v1/telemetry``) and line protocol
   (``POST /api/v1/write?precision=ms``) apart: 4 client processes, one keep-alive
   connection each, batches of 5,000 values back to back for 20 s (``--quick`` 4 s).
   Target >= 100,000 values/s; reference ThingsBoard's published 15,000 data points/s
   on 2 vCPU (not measured here).
2. The demo fleet at 25,000 values/s: 5 client processes, each posting one batch of
   5,000 values per second (offset by 0.2 s) for 30 s (``--quick`` 6 s), an open loop.
   Achieved rate, batch latency and the backlog (how late a send left because the
   previous answer came back after its slot).
3. InfluxDB 1.x (Debian's ``influxd``, started here): the line-protocol batches through
   Outpost (``OUTPOST_TELEMETRY_STORE=influxdb``) vs the same values posted by the same
   client straight to InfluxDB's ``/write``, as the lines Outpost stores (measurement =
   metric, tags ``asset_id`` and ``org_id``, field ``value``). Ratio target >= 0.8.
4. MQTT: ``outpost ingest-mqtt`` vs Mosquitto with a subscriber that acknowledges at
   once, same publishers and messages (``bench/telemetry_mqtt.py``). Ratio target >= 0.8.
5. Queries on SQLite: a site of 50 inverters with one day of points every 10 s
   (``--quick`` every minute) written through the store API and rolled up by
   ``downsample``; p50/p99 over HTTP of one series at 1-minute means (<= 20 ms), the
   site's summed inverter power at 15 minutes (<= 100 ms), the latest values of the 50
   inverters (<= 10 ms); and the file's bytes per raw point after a checkpoint.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import select

from bench import telemetry_mqtt
from bench.common import (
    Context,
    Result,
    Server,
    Timer,
    expect,
    info,
    latency_results,
    percentile,
    running_server,
    seeded_fleet,
)
from bench.telemetry_load import (
    PLACEHOLDER,
    ClientRun,
    Target,
    Templates,
    closed_loop,
    in_processes,
    paced,
)
from outpost.db import Database
from outpost.demo import DEMO_ORG
from outpost.identity import service as identity
from outpost.identity.models import Organization
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset
from outpost.inventory.schemas import ChangeSetIn, CreateOp, SiteCreate
from outpost.telemetry.metrics import Metric, metrics_of
from outpost.telemetry.query import format_ns
from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import HOUR_NS, MINUTE_NS, NS_PER_SECOND, Point, SeriesQuery

# tests/support/influx.py starts influxd; it imports its siblings as ``support.*``.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from support.influx import running_influxd

NAME = "telemetry"
BATCH_VALUES = 5_000
MS = 1_000_000  # ns
DAY_S = 86_400
INGEST_TARGET = 100_000  # values/s
THINGSBOARD = 15_000  # data points/s, ThingsBoard's published figure on 2 vCPU
FLEET_RATE = 25_000  # values/s offered
FLEET_CLIENTS = 5
RATIO_TARGET = 0.8
QUERY_TARGETS_MS = {"series": 20.0, "site": 100.0, "latest": 10.0}
QUERY_INVERTERS = 50
INVERTER_METRICS = ("ac_power_kw", "energy_total_kwh", "dc_voltage_v")


@dataclass(frozen=True)
class Sizes:
    ingest_s: float
    clients: int
    fleet_s: int
    influx_s: float
    influx_rounds: int
    query_every_s: int
    query_requests: int
    mqtt_messages: int  # per publisher


FULL = Sizes(20, 4, 30, 10, 2, 10, 300, 10_000)
QUICK = Sizes(4, 4, 6, 3, 1, 60, 40, 1_000)


def run(ctx: Context) -> list[Result]:
    if ctx.engine != "sqlite":
        ctx.log("telemetry runs on the SQLite engine only (its store does not use it)")
        return []
    sizes = QUICK if ctx.quick else FULL
    url, _ = seeded_fleet(ctx, "telemetry")
    fleet = load_fleet(url)
    ctx.log(f"{len(fleet.series):,} (asset, metric) series in the fleet")
    results: list[Result] = []
    with running_server(ctx, url, "telemetry-sqlite") as server:
        results += _ingest(ctx, server, fleet, sizes, "json")
        results += _ingest(ctx, server, fleet, sizes, "line protocol")
        results += _fleet_rate(ctx, server, fleet, sizes)
    results += _influx(ctx, url, fleet, sizes)
    results += _mqtt(ctx, url, fleet, sizes)
    results += _queries(ctx, url, sizes)
    return results


# --- the fleet's series and batch bodies ----------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    org_id: str
    series: tuple[tuple[str, Metric], ...]  # (asset id, metric), asset by asset


def load_fleet(url: str) -> Fleet:
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            org_id = session.scalars(
                select(Organization.id).where(Organization.name == DEMO_ORG)
            ).one()
            rows = session.execute(
                select(Asset.id, Asset.type)
                .where(Asset.org_id == org_id)
                .order_by(Asset.site_id, Asset.id)
            ).all()
    finally:
        database.dispose()
    series = tuple((asset_id, m) for asset_id, kind in rows for m in metrics_of(kind))
    return Fleet(org_id, series)


def sample_value(metric: Metric, n: int) -> float | int | bool:
    """A valid value for ``metric`` (every declared range holds 0..100)."""
    if metric.value_type == "bool":
        return n % 2 == 0
    if metric.value_type == "int":
        return 12 + n % 50
    return 12.5 + (n % 50) / 4


def _lp_value(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return f"{value}i"
    return repr(value)


def _batches(fleet: Fleet) -> list[list[tuple[str, Metric, float | int | bool]]]:
    """The fleet's series in chunks of exactly ``BATCH_VALUES`` (the remainder is dropped
    when there is at least one whole chunk)."""
    values = [(a, m, sample_value(m, n)) for n, (a, m) in enumerate(fleet.series)]
    whole = len(values) - len(values) % BATCH_VALUES
    return [values[i : i + BATCH_VALUES] for i in range(0, max(whole, 1), BATCH_VALUES)]


def _by_asset(
    chunk: list[tuple[str, Metric, float | int | bool]],
) -> Iterator[tuple[str, list[tuple[Metric, float | int | bool]]]]:
    current: str | None = None
    group: list[tuple[Metric, float | int | bool]] = []
    for asset_id, metric, value in chunk:
        if asset_id != current and group:
            yield current or "", group
            group = []
        current = asset_id
        group.append((metric, value))
    if group:
        yield current or "", group


def json_templates(fleet: Fleet) -> Templates:
    """``{"points": [{"asset", "time": <ms>, "values": {...}}]}``, one point per asset."""
    bodies = []
    for chunk in _batches(fleet):
        points = [
            {"asset": a, "time": "@T@", "values": {m.name: v for m, v in group}}
            for a, group in _by_asset(chunk)
        ]
        raw = json.dumps({"points": points}, separators=(",", ":")).encode()
        bodies.append(raw.replace(b'"' + PLACEHOLDER + b'"', PLACEHOLDER))
    return Templates(tuple(bodies), tuple(len(c) for c in _batches(fleet)))


def line_templates(fleet: Fleet) -> Templates:
    """``bench,asset=<id> m1=v,m2=v <ms>``, one line per asset."""
    bodies = []
    for chunk in _batches(fleet):
        lines = [
            f"bench,asset={a} {','.join(f'{m.name}={_lp_value(v)}' for m, v in group)} @T@"
            for a, group in _by_asset(chunk)
        ]
        bodies.append(("\n".join(lines) + "\n").encode())
    return Templates(tuple(bodies), tuple(len(c) for c in _batches(fleet)))


def influx_templates(fleet: Fleet) -> Templates:
    """The same values as the lines Outpost's InfluxDB store writes: one per value."""
    bodies = []
    for chunk in _batches(fleet):
        lines = [
            f"{m.name},asset_id={a},org_id={fleet.org_id} value={float(v)!r} @T@"
            for a, m, v in chunk
        ]
        bodies.append(("\n".join(lines) + "\n").encode())
    return Templates(tuple(bodies), tuple(len(c) for c in _batches(fleet)))


def stored_points(ctx: Context) -> int:
    """Raw points in the bench server's SQLite store (``OUTPOST_DATA_DIR/telemetry.db``)."""
    path = ctx.workdir / "data" / "telemetry.db"
    if not path.exists():
        return 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            (count,) = conn.execute("SELECT count(*) FROM points").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(count)


def _now_ms() -> int:
    return time.time_ns() // MS


def _outpost_target(server: Server, kind: str) -> Target:
    auth = ("Authorization", f"Bearer {server.token}")
    if kind == "json":
        return Target(
            server.port, "/api/v1/telemetry", (auth, ("Content-Type", "application/json"))
        )
    return Target(
        server.port,
        "/api/v1/write?precision=ms",
        (auth, ("Content-Type", "text/plain; charset=utf-8")),
    )


# --- closed loop: values/s --------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    values_per_s: float
    batches: int
    p50_ms: float
    p99_ms: float
    refused: dict[int, int]


def throughput(
    target: Target, templates: Templates, clients: int, seconds: float, t0_ms: int
) -> Throughput:
    """``clients`` processes posting back to back for ``seconds``; batch ``n`` of client
    ``k`` is stamped ``t0_ms + n * clients + k`` (ms), so no point is written twice."""
    start_at = time.monotonic() + 0.5
    most = int(seconds * 200) + 10  # more batches than any client can send
    jobs = [
        functools.partial(
            closed_loop,
            target,
            templates,
            [t0_ms + n * clients + k for n in range(most)],
            start_at,
            start_at + seconds,
        )
        for k in range(clients)
    ]
    runs = in_processes(jobs)
    _raise_errors(runs)
    samples = [s for r in runs for s in r.samples]
    if not samples:
        raise RuntimeError("no batch was accepted")
    elapsed = max(s.done for s in samples) - start_at
    latencies = [(s.done - s.sent) * 1000 for s in samples]
    return Throughput(
        sum(s.values for s in samples) / elapsed,
        len(samples),
        percentile(latencies, 50),
        percentile(latencies, 99),
        _refused(runs),
    )


def _refused(runs: Sequence[ClientRun]) -> dict[int, int]:
    total: dict[int, int] = {}
    for r in runs:
        for status, count in r.refused.items():
            total[status] = total.get(status, 0) + count
    return total


def _raise_errors(runs: Sequence[ClientRun]) -> None:
    """503 (queue full) is a measured outcome; anything else non-2xx is a bench error."""
    for r in runs:
        unexpected = [e for e in r.errors if not e.startswith("HTTP 503")]
        if unexpected:
            raise RuntimeError(f"a client failed: {unexpected[0]}")


def _ingest(ctx: Context, server: Server, fleet: Fleet, sizes: Sizes, kind: str) -> list[Result]:
    templates = json_templates(fleet) if kind == "json" else line_templates(fleet)
    offset_min = 120 if kind == "json" else 110  # apart from every other run's points
    ctx.log(f"ingest {kind}: {sizes.clients} clients for {sizes.ingest_s:g} s")
    before = stored_points(ctx)
    measured = throughput(
        _outpost_target(server, kind),
        templates,
        sizes.clients,
        sizes.ingest_s,
        _now_ms() - offset_min * 60_000,
    )
    label = f"ingest SQLite {kind}"
    return [
        Result(
            NAME,
            f"{label}: values/s ({sizes.clients} clients, {BATCH_VALUES:,}/batch, "
            f"{sizes.ingest_s:g} s)",
            measured.values_per_s,
            "values/s",
            f">= {INGEST_TARGET:,} values/s",
            measured.values_per_s >= INGEST_TARGET,
        ),
        info(
            NAME,
            f"{label}: ratio to ThingsBoard's 15,000 points/s",
            measured.values_per_s / THINGSBOARD,
            "ratio",
            "published figure, not measured",
        ),
        info(NAME, f"{label}: batch latency p50 (n={measured.batches})", measured.p50_ms, "ms"),
        info(NAME, f"{label}: batch latency p99 (n={measured.batches})", measured.p99_ms, "ms"),
        info(NAME, f"{label}: batches refused 503", sum(measured.refused.values()), ""),
        info(NAME, f"{label}: points in the store before the run", before, ""),
    ]


# --- open loop: the demo fleet at one reading per second --------------------------------------


def _fleet_rate(ctx: Context, server: Server, fleet: Fleet, sizes: Sizes) -> list[Result]:
    templates = json_templates(fleet)
    seconds = sizes.fleet_s
    offered = FLEET_CLIENTS * BATCH_VALUES  # per second
    ctx.log(f"fleet: {offered:,} values/s offered for {seconds} s")
    before = stored_points(ctx)
    t0_ms = _now_ms() - 100 * 60_000
    start_at = time.monotonic() + 0.5
    jobs = [
        functools.partial(
            paced,
            _outpost_target(server, "json"),
            templates,
            [i * FLEET_CLIENTS + k for i in range(seconds)],
            [t0_ms + i * 1000 + k for i in range(seconds)],
            start_at + k / FLEET_CLIENTS,
            1.0,
        )
        for k in range(FLEET_CLIENTS)
    ]
    runs = in_processes(jobs)
    _raise_errors(runs)
    samples = [s for r in runs for s in r.samples]
    refused = sum(_refused(runs).values())
    accepted = sum(s.values for s in samples)
    elapsed = max(s.done for s in samples) - start_at
    achieved = accepted / elapsed
    latencies = [(s.done - s.sent) * 1000 for s in samples]
    lateness = [(s.sent - s.due) * 1000 for s in samples]
    last = [(s.sent - s.due) * 1000 for s in samples if s.due >= start_at + seconds - 2]
    label = f"fleet {offered:,} values/s for {seconds} s"
    floor = 0.99 * offered
    return [
        Result(
            NAME,
            f"{label}: achieved",
            achieved,
            "values/s",
            f">= {floor:,.0f} values/s (99 %)",
            achieved >= floor and refused == 0,
        ),
        *latency_results(NAME, f"{label}: batch latency", latencies, {"p99": 1000.0}),
        Result(
            NAME,
            f"{label}: backlog, max lateness of a send",
            max(lateness),
            "ms",
            "<= 1000 ms",
            max(lateness) <= 1000,
        ),
        info(NAME, f"{label}: lateness of the last 2 s of sends, max", max(last or [0]), "ms"),
        info(NAME, f"{label}: batches refused 503", refused, ""),
        info(NAME, f"{label}: points in the store before the run", before, ""),
    ]


# --- InfluxDB: through Outpost vs direct ---------------------------------------------------------


def _influx_query(url: str, q: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(
            "POST",
            "/query",
            body=urlencode({"q": q}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"InfluxDB {q!r}: HTTP {response.status}: {body[:300]!r}")
    finally:
        connection.close()


def _influx(ctx: Context, url: str, fleet: Fleet, sizes: Sizes) -> list[Result]:
    influxd = shutil.which("influxd")
    if influxd is None:
        ctx.log("influxd is not installed: InfluxDB figures skipped (apt-get install influxdb)")
        return []
    results: list[Result] = []
    with running_influxd(influxd) as influx_url:
        _influx_query(influx_url, "CREATE DATABASE bench_direct")
        extra = {
            "OUTPOST_TELEMETRY_STORE": "influxdb",
            "OUTPOST_INFLUX_URL": influx_url,
            "OUTPOST_INFLUX_DATABASE": "outpost_bench",
        }
        port = int(influx_url.rsplit(":", 1)[1])
        direct_target = Target(
            port,
            "/write?db=bench_direct&precision=ms",
            (("Content-Type", "text/plain; charset=utf-8"),),
            ok=(204,),
        )
        direct_templates, outpost_templates = influx_templates(fleet), line_templates(fleet)
        best: dict[str, Throughput] = {}
        with running_server(ctx, url, "telemetry-influx", extra) as server:
            for round_ in range(sizes.influx_rounds):
                t0 = _now_ms() - (90 - 5 * round_) * 60_000
                for name, target, templates in (
                    ("direct", direct_target, direct_templates),
                    ("Outpost", _outpost_target(server, "line protocol"), outpost_templates),
                ):
                    ctx.log(f"influx round {round_ + 1}: {name}")
                    measured = throughput(
                        target, templates, sizes.clients, sizes.influx_s, t0 + (name == "direct")
                    )
                    if name not in best or measured.values_per_s > best[name].values_per_s:
                        best[name] = measured
    rounds = f"best of {sizes.influx_rounds}, {sizes.clients} clients, {sizes.influx_s:g} s"
    for name in ("Outpost", "direct"):
        results.append(
            info(NAME, f"InfluxDB {name}: values/s ({rounds})", best[name].values_per_s, "values/s")
        )
        results.append(info(NAME, f"InfluxDB {name}: batch latency p50", best[name].p50_ms, "ms"))
    ratio = best["Outpost"].values_per_s / best["direct"].values_per_s
    results.append(
        Result(
            NAME, "InfluxDB ratio Outpost/direct", ratio, "ratio", ">= 0.80", ratio >= RATIO_TARGET
        )
    )
    return results


# --- MQTT ---------------------------------------------------------------------------------------


def _mqtt(ctx: Context, url: str, fleet: Fleet, sizes: Sizes) -> list[Result]:
    if not shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin:/usr/bin"):
        ctx.log("mosquitto is not installed: MQTT figures skipped (apt-get install mosquitto)")
        return []
    t0_ms = _now_ms() - 80 * 60_000
    devices = telemetry_mqtt.prepare(url, fleet.org_id, sizes.mqtt_messages, t0_ms)
    first = devices.devices[0]
    probe = json.dumps(
        {
            "points": [
                {"asset": first.gateway, "time": t0_ms - 600_000, "values": {"cpu_load_pct": 1.0}}
            ]
        }
    ).encode()
    label = (
        f"MQTT {devices.messages:,} messages QoS 1 ({telemetry_mqtt.PUBLISHERS} publishers, "
        f"{telemetry_mqtt.INFLIGHT} in flight each)"
    )
    ctx.log(f"{label}: broker + acknowledging subscriber")
    reference = telemetry_mqtt.reference(ctx.workdir, devices)
    ctx.log(f"{label}: through outpost ingest-mqtt")
    outpost = telemetry_mqtt.through_outpost(ctx.workdir, url, devices, probe)
    ratio = outpost.messages_per_s / reference.messages_per_s
    return [
        info(NAME, f"{label}: outpost ingest-mqtt, stored", outpost.messages_per_s, "messages/s"),
        info(NAME, "MQTT outpost ingest-mqtt: values/s stored", outpost.values_per_s, "values/s"),
        info(
            NAME, "MQTT outpost: publishers' time to the last PUBACK", outpost.publish_seconds, "s"
        ),
        info(
            NAME,
            "MQTT reference: broker + subscriber acking at once",
            reference.messages_per_s,
            "messages/s",
        ),
        Result(
            NAME,
            "MQTT ratio ingest-mqtt/reference",
            ratio,
            "ratio",
            ">= 0.80",
            ratio >= RATIO_TARGET,
        ),
    ]


# --- queries on SQLite ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuerySite:
    site_id: str
    inverters: tuple[str, ...]


def _query_site_ops(site_id: str) -> list[CreateOp]:
    """4 gateways and 50 inverters (13, 13, 12, 12 on the gateways' buses)."""
    operations: list[CreateOp] = []
    for g in range(4):
        gateway = f"QRY-GW{g + 1}"
        config = {
            "ip": f"10.2.{g}.1",
            "subnet": f"10.2.{g}.0/24",
            "upload_interval_s": 60,
            "max_controllers": 4,
            "max_bus_devices": 16,
            "firmware": "2.4.1",
        }
        operations.append(
            CreateOp(
                op="create",
                ref=gateway,
                site_id=site_id,
                type="gateway",
                name=f"Query gateway {g + 1}",
                serial=gateway,
                config=config,
            )
        )
    for i in range(QUERY_INVERTERS):
        ref = f"QRY-INV{i + 1:02d}"
        operations.append(
            CreateOp(
                op="create",
                ref=ref,
                site_id=site_id,
                parent_ref=f"QRY-GW{i % 4 + 1}",
                type="inverter",
                name=f"Query inverter {i + 1}",
                serial=ref,
                config={"modbus_address": 10 + i // 4, "rated_power_kw": 50.0},
            )
        )
    return operations


def create_query_site(url: str, org_id: str) -> QuerySite:
    """A site of 50 inverters under 4 gateways, in the demo organization."""
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            actor = identity.system_actor(org_id, "telemetry bench")
            (site,) = inventory.create_sites(
                session,
                actor,
                [SiteCreate(name="Query plant", code="QRY-001", timezone="Europe/Paris")],
            )
            inventory.run_changeset(
                session, actor, ChangeSetIn(operations=_query_site_ops(site.id)), dry_run=False
            )
            inverters = tuple(
                session.scalars(
                    select(Asset.id)
                    .where(Asset.site_id == site.id, Asset.type == "inverter")
                    .order_by(Asset.serial)
                )
            )
            return QuerySite(site.id, inverters)
    finally:
        database.dispose()


def write_day(path: Path, org_id: str, site: QuerySite, every_s: int, end_ns: int) -> int:
    """One day of the 3 inverter metrics of every inverter before ``end_ns``, every
    ``every_s``, through the store API; then ``downsample``. The raw points written."""
    store = SQLiteTelemetryStore(path, queue_points=500_000)
    written = 0
    try:
        start_ns = end_ns - DAY_S * NS_PER_SECOND
        step = every_s * NS_PER_SECOND
        times = range(start_ns, end_ns, step)
        for n, asset_id in enumerate(site.inverters):
            points = []
            energy = 1000.0 * n
            for k, t in enumerate(times):
                power = 25.0 + 20.0 * ((k * 7 + n * 13) % 97) / 97
                energy += power * every_s / 3600
                points.append(Point(org_id, asset_id, "ac_power_kw", t, power))
                points.append(Point(org_id, asset_id, "energy_total_kwh", t, energy))
                points.append(Point(org_id, asset_id, "dc_voltage_v", t, 600.0 + (k + n) % 40))
            for i in range(0, len(points), 100_000):
                store.write(points[i : i + 100_000])
            written += len(points)
        store.downsample(end_ns)
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return written


def _table_bytes(path: Path) -> dict[str, int]:
    """Bytes per table and index (SQLite's dbstat), or {} when it is not compiled in."""
    try:
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {name: int(size) for name, size in rows}


def _queries(ctx: Context, url: str, sizes: Sizes) -> list[Result]:
    fleet = load_fleet(url)
    site = create_query_site(url, fleet.org_id)
    path = ctx.workdir / "query-telemetry.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    end_ns = (time.time_ns() // HOUR_NS - 1) * HOUR_NS  # whole hours: 96 windows of 15m
    start_ns = end_ns - DAY_S * NS_PER_SECOND
    began = time.perf_counter()
    points = write_day(path, fleet.org_id, site, sizes.query_every_s, end_ns)
    ctx.log(
        f"queries: {points:,} points written and rolled up in {time.perf_counter() - began:.1f} s"
    )
    file_bytes = sum(
        os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}")
    )
    tables = _table_bytes(path)
    results = [
        info(
            NAME,
            f"SQLite file bytes per raw point ({points:,} points, every "
            f"{sizes.query_every_s} s, rollups included)",
            file_bytes / points,
            "B",
        ),
    ]
    if tables:
        raw = tables.get("points", 0)
        results.append(info(NAME, "SQLite raw points table bytes per point", raw / points, "B"))
        rollups = tables.get("rollup_1m", 0) + tables.get("rollup_1h", 0)
        results.append(
            info(NAME, "SQLite rollup tables bytes per raw point", rollups / points, "B")
        )

    results += _store_queries(path, fleet.org_id, site, start_ns, end_ns, sizes.query_requests)
    window = {"start": format_ns(start_ns), "end": format_ns(end_ns)}
    requests = {
        "series": "/api/v1/telemetry/query?"
        + urlencode(
            {
                "asset": site.inverters[0],
                "metric": "ac_power_kw",
                "every": "1m",
                "aggregate": "mean",
                **window,
            }
        ),
        "site": "/api/v1/telemetry/query?"
        + urlencode(
            {
                "site": site.site_id,
                "type": "inverter",
                "metric": "ac_power_kw",
                "every": "15m",
                "aggregate": "mean",
                "across": "sum",
                **window,
            }
        ),
        "latest": "/api/v1/telemetry/latest?" + urlencode([("asset", a) for a in site.inverters]),
    }
    expected = {"series": 1440, "site": 96, "latest": QUERY_INVERTERS * 3}
    labels = {
        "series": "query one series, 1 day at 1m means",
        "site": f"query site sum of {QUERY_INVERTERS} inverters' power, 1 day at 15m",
        "latest": f"latest values of {QUERY_INVERTERS} assets",
    }
    extra = {"OUTPOST_TELEMETRY_FILE": str(path)}
    with running_server(ctx, url, "telemetry-queries", extra) as server:
        client = server.client()
        try:
            for name, path_ in requests.items():  # warm-up and check
                body = expect(client.request("GET", path_), 200, name).json()
                got = _count(name, body)
                if got != expected[name]:
                    raise RuntimeError(f"{name}: {got} values, expected {expected[name]}")
            samples: dict[str, list[float]] = {name: [] for name in requests}
            for _ in range(sizes.query_requests):
                for name, path_ in requests.items():  # interleaved
                    response = expect(client.request("GET", path_), 200, name)
                    samples[name].append(response.seconds * 1000)
        finally:
            client.close()
    for name in requests:
        results += latency_results(
            NAME,
            labels[name],
            samples[name],
            {"p50": QUERY_TARGETS_MS[name], "p99": QUERY_TARGETS_MS[name]},
        )
    return results


def _store_queries(
    path: Path, org_id: str, site: QuerySite, start_ns: int, end_ns: int, rounds: int
) -> list[Result]:
    """The same three reads on the store API in this process (no HTTP, no asset lookup):
    what the store itself takes, as info next to the HTTP figures."""
    store = SQLiteTelemetryStore(path)
    reads: dict[str, Callable[[], object]] = {
        "series": lambda: store.query(
            SeriesQuery(
                org_id,
                site.inverters[:1],
                ("ac_power_kw",),
                start_ns,
                end_ns,
                every_ns=MINUTE_NS,
                resolution="1m",
            )
        ),
        "site": lambda: store.query(
            SeriesQuery(
                org_id,
                site.inverters,
                ("ac_power_kw",),
                start_ns,
                end_ns,
                every_ns=15 * MINUTE_NS,
                across="sum",
                resolution="1m",
            )
        ),
        "latest": lambda: store.latest(org_id, site.inverters),
    }
    samples: dict[str, list[float]] = {name: [] for name in reads}
    try:
        for _ in range(rounds):
            for name, read in reads.items():
                with Timer() as timer:
                    read()
                samples[name].append(timer.seconds * 1000)
    finally:
        store.close()
    return [
        info(
            NAME,
            f"store API in-process, {name}: {key} (n={rounds})",
            percentile(samples[name], pct),
            "ms",
        )
        for name in reads
        for key, pct in (("p50", 50), ("p99", 99))
    ]


def _count(name: str, body: dict[str, object]) -> int:
    if name == "latest":
        readings = body["readings"]
        assert isinstance(readings, list)
        return len(readings)
    series = body["series"]
    assert isinstance(series, list)
    return sum(len(s["points"]) for s in series)

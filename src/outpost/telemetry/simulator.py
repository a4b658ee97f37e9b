"""The demo simulator: plausible telemetry for the demo fleet, sent like a device sends it.

Two halves. The **model** is pure: ``readings(asset, t_s, every_s)`` is a function of the
asset's constants and the time, nothing else, so a restart picks up exactly where the
last run left off. Inverters follow the sun of their site's time zone (standard time:
the sun ignores daylight saving) with some cloud; meters follow a working-day load;
counters (``energy_total_kwh``, ``energy_import_kwh``) are closed-form integrals of the
mean of those curves since :data:`EPOCH_S`, so they only grow, across batches and
restarts. Noise comes from a hash of (asset, time), never from a random generator.

The **sender** posts one reading per asset per tick to ``POST /api/v1/telemetry`` over a
few keep-alive connections, resends a batch refused with 429/503 (after ``Retry-After``)
until it is taken or the simulator is stopped, and never drops a batch without saying so.
"""

from __future__ import annotations

import http.client
import json
import math
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from outpost.identity.principal import Principal
from outpost.inventory import queries
from outpost.inventory.schemas import AssetFilter, SiteFilter

Value = float | int | bool
Values = dict[str, Value]

DAY_S: Final = 86_400
#: Counters integrate from 2020-01-01 (local midnight of each site).
EPOCH_DAY: Final = 18_262
EPOCH_S: Final = EPOCH_DAY * DAY_S
#: Gateways were (re)booted in the 90 days after this moment (2025-01-01).
BOOT_EPOCH_S: Final = 20_089 * DAY_S
#: What the simulator's API token may do. Ingestion answers an asset its sender cannot
#: read as unknown, so telemetry.write alone is not enough: asset.read goes with it.
TOKEN_PERMISSIONS: Final = ("telemetry.write",)
_MASK: Final = (1 << 64) - 1
_TWO_PI: Final = 2 * math.pi

# --- the model: pure functions of (asset, time) ------------------------------------------


@dataclass(frozen=True, slots=True)
class SimAsset:
    """What the model needs of one asset, computed once."""

    asset_id: str
    type: str
    seed: int  # noise of this asset
    site_seed: int  # weather shared by the site's assets
    offset_s: int  # the site's standard UTC offset
    scale: float  # rated kW (inverter), base load W (meter)
    kind: str = ""  # a sensor's kind
    start: float = 0.0  # a counter's value at EPOCH_S, or a boot time
    climate: float = 0.0  # the site's temperature offset, °C


@dataclass(frozen=True, slots=True)
class SensorModel:
    """A sensor kind: ``base + amplitude·cos(day phase from peak_hour) + noise``, clamped."""

    base: float
    amplitude: float
    peak_hour: float
    noise: float
    low: float
    high: float
    climate: float = 0.0  # how much the site's climate shifts the base
    shape: str = "daily"  # "daily", "solar" (follows the sun), "contact" (0/1)


SENSOR_MODELS: Final[Mapping[str, SensorModel]] = {
    "temperature": SensorModel(14.0, 7.0, 15.0, 0.3, -30.0, 50.0, climate=1.0),
    "humidity": SensorModel(65.0, -15.0, 15.0, 2.0, 5.0, 100.0),
    "pressure": SensorModel(1013.0, 1.5, 10.0, 0.3, 950.0, 1050.0, climate=0.5),
    "wind_speed": SensorModel(3.5, 2.0, 14.0, 1.5, 0.0, 40.0),
    "irradiance": SensorModel(1000.0, 0.0, 12.0, 5.0, 0.0, 1400.0, shape="solar"),
    "door_contact": SensorModel(0.0, 0.0, 0.0, 0.0, 0.0, 1.0, shape="contact"),
}
DEFAULT_SENSOR: Final = "temperature"


def unit(seed: int, n: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, n): splitmix64."""
    x = (seed * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 18446744073709551616.0


def _window(hour: float, start: float) -> float:
    """A bell over the 12 hours from ``start``: sin², 0 outside; its daily integral is 6 h."""
    if not start <= hour < start + 12:
        return 0.0
    s = math.sin(math.pi * (hour - start) / 12)
    return s * s


def _window_hours(t_local: float, start: float) -> float:
    """∫ _window dh from local midnight of EPOCH_DAY to ``t_local`` (local seconds), hours."""
    day, second = divmod(t_local, DAY_S)
    x = math.pi * min(max(second / 3600 - start, 0.0), 12.0) / 12
    return (day - EPOCH_DAY) * 6.0 + 12 / math.pi * (x / 2 - math.sin(2 * x) / 4)


SUNRISE_H: Final = 6.0  # production from 06:00 to 18:00 local standard time
WORK_H: Final = 7.0  # a working day's load from 07:00 to 19:00
CLOUD_DEPTH: Final = 0.4  # clouds take up to 40% of the sun ...
MEAN_CLOUD: Final = 1 - CLOUD_DEPTH / 2  # ... 20% on average, which the counters integrate
CLOUD_S: Final = 900  # the weather changes over 15 minutes
METER_DAY_LOAD: Final = 1.5  # a meter's load rises to 2.5x its base in working hours
BADGE_EVERY_S: Final = 300  # a door sees a badge every 5 minutes in working hours


def local_hour(asset: SimAsset, t_s: float) -> float:
    return ((t_s + asset.offset_s) % DAY_S) / 3600


def sun(asset: SimAsset, t_s: float) -> float:
    """The clear-sky production curve at the site, 0..1."""
    return _window(local_hour(asset, t_s), SUNRISE_H)


def cloud(asset: SimAsset, t_s: float) -> float:
    """The share of the sun the site's clouds let through, 1 - CLOUD_DEPTH .. 1, smooth."""
    bucket, into = divmod(t_s, CLOUD_S)
    n = int(bucket)
    a, b = unit(asset.site_seed, n), unit(asset.site_seed, n + 1)
    return 1 - CLOUD_DEPTH * (a + (b - a) * into / CLOUD_S)


def inverter_energy_kwh(asset: SimAsset, t_s: float) -> float:
    """The production counter: its start plus the mean production since EPOCH_S."""
    hours = _window_hours(t_s + asset.offset_s, SUNRISE_H)
    return asset.start + asset.scale * MEAN_CLOUD * hours


def meter_energy_kwh(asset: SimAsset, t_s: float) -> float:
    """The import counter: its start plus the mean load since EPOCH_S."""
    t_local = t_s + asset.offset_s
    base_hours = (t_local - EPOCH_S) / 3600
    day_hours = METER_DAY_LOAD * _window_hours(t_local, WORK_H)
    return asset.start + asset.scale * (base_hours + day_hours) / 1000


def _inverter(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    level = sun(asset, t_s)
    if level == 0.0:
        power = voltage = 0.0
    else:
        jitter = 0.97 + 0.06 * unit(asset.seed, t_s)
        power = round(asset.scale * level * cloud(asset, t_s) * jitter, 3)
        voltage = round(560 + 90 * level + 10 * unit(asset.seed + 1, t_s), 1)
    return {
        "ac_power_kw": power,
        "energy_total_kwh": round(inverter_energy_kwh(asset, t_s), 3),
        "dc_voltage_v": voltage,
    }


def _meter(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    day = _window(local_hour(asset, t_s), WORK_H)
    jitter = 0.95 + 0.1 * unit(asset.seed, t_s)
    return {
        "active_power_w": round(asset.scale * (1 + METER_DAY_LOAD * day) * jitter, 1),
        "energy_import_kwh": round(meter_energy_kwh(asset, t_s), 3),
        "voltage_l1_v": round(231 - 3 * day + 4 * (unit(asset.seed + 1, t_s) - 0.5), 1),
    }


def _sensor(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    model = SENSOR_MODELS.get(asset.kind) or SENSOR_MODELS[DEFAULT_SENSOR]
    noise = unit(asset.seed, t_s) - 0.5
    if model.shape == "solar":
        level = model.base * sun(asset, t_s) * cloud(asset, t_s)
        value = level + model.noise * noise if level else 0.0
    elif model.shape == "contact":
        open_now = working(asset, t_s) and unit(asset.seed, t_s // 60) < 0.05
        value = 1.0 if open_now else 0.0
    else:
        phase = _TWO_PI * (local_hour(asset, t_s) - model.peak_hour) / 24
        base = model.base + model.climate * asset.climate
        value = base + model.amplitude * math.cos(phase) + 2 * model.noise * noise
    return {"value": round(min(max(value, model.low), model.high), 2)}


def working(asset: SimAsset, t_s: float) -> bool:
    """Monday to Friday, 08:00 to 18:00 at the site (standard time)."""
    day, second = divmod(t_s + asset.offset_s, DAY_S)
    return (int(day) + 3) % 7 < 5 and 8 * 3600 <= second < 18 * 3600


def _badge_reader(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    """Now and then in working hours (a badge per door every BADGE_EVERY_S on average)."""
    if not working(asset, t_s) or unit(asset.seed, t_s) >= every_s / BADGE_EVERY_S:
        return None
    return {"access_granted": unit(asset.seed + 1, t_s) >= 0.08}


def _cpu(asset: SimAsset, t_s: int, idle: float, busy: float) -> float:
    day = _window(local_hour(asset, t_s), WORK_H)
    return idle + busy * day + 12 * unit(asset.seed, t_s)


def _gateway(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    return {
        "cpu_load_pct": round(_cpu(asset, t_s, 6, 20), 1),
        "uptime_s": max(0, t_s - int(asset.start)),
    }


def _controller(asset: SimAsset, t_s: int, every_s: int) -> Values | None:
    cpu = _cpu(asset, t_s, 10, 30)
    ambient = 16 + asset.climate + 6 * math.cos(_TWO_PI * (local_hour(asset, t_s) - 15) / 24)
    return {"cpu_load_pct": round(cpu, 1), "temperature_c": round(ambient + 12 + 0.2 * cpu, 1)}


Model = Callable[[SimAsset, int, int], Values | None]
MODELS: Final[Mapping[str, Model]] = {
    "inverter": _inverter,
    "meter": _meter,
    "sensor": _sensor,
    "badge_reader": _badge_reader,
    "gateway": _gateway,
    "controller": _controller,
}


def readings(asset: SimAsset, t_s: int, every_s: int = 10) -> Values | None:
    """The asset's values at ``t_s`` (whole seconds), or None when it has nothing to say."""
    return MODELS[asset.type](asset, t_s, every_s)


@lru_cache(maxsize=256)
def standard_offset_s(timezone: str) -> int:
    """The zone's UTC offset without daylight saving (in January 2025)."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        return 0
    moment = datetime(2025, 1, 15, 12, tzinfo=UTC).astimezone(zone)
    offset, dst = moment.utcoffset(), moment.dst()
    return int(offset.total_seconds() - (dst.total_seconds() if dst else 0)) if offset else 0


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def describe(
    asset_id: str, asset_type: str, config: Mapping[str, Any], site_id: str, timezone: str
) -> SimAsset | None:
    """The model's constants for one asset; None for a type the simulator does not feed."""
    if asset_type not in MODELS:
        return None
    seed, site_seed = _seed(asset_id), _seed(site_id)
    scale, start = 1.0, 0.0
    if asset_type == "inverter":
        rated = config.get("rated_power_kw")
        scale = float(rated) if isinstance(rated, int | float) and rated > 0 else 50.0
        # 1 to 4 years of some 1,100 full-load hours before 2020
        start = scale * (1100 + 3300 * unit(seed, 2))
    elif asset_type == "meter":
        scale = 8_000 + 12_000 * unit(seed, 2)  # base load, W
        start = scale / 1000 * 8760 * unit(seed, 3)
    elif asset_type == "gateway":
        start = float(BOOT_EPOCH_S + int(90 * DAY_S * unit(seed, 2)))
    return SimAsset(
        asset_id=asset_id,
        type=asset_type,
        seed=seed,
        site_seed=site_seed,
        offset_s=standard_offset_s(timezone),
        scale=scale,
        kind=str(config.get("kind", "")) if asset_type == "sensor" else "",
        start=start,
        climate=10 * unit(site_seed, 1) - 5,
    )


def load_fleet(
    session: Session, principal: Principal, *, sites: int | None = None
) -> list[SimAsset]:
    """The assets ``principal`` may read on its first ``sites`` sites (by code; all when
    None), as the model's constants, through the inventory's own read queries."""
    zones: dict[str, str] = {}
    cursor: str | None = None
    while sites is None or len(zones) < sites:
        site_page = queries.list_sites(session, principal, SiteFilter(limit=500, cursor=cursor))
        zones.update((site.id, site.timezone) for site, _count in site_page.items)
        cursor = site_page.next_cursor
        if cursor is None:
            break
    if sites is not None:
        zones = dict(list(zones.items())[:sites])
    fleet: list[SimAsset] = []
    cursor = None
    while True:
        page = queries.list_assets(session, principal, AssetFilter(limit=500, cursor=cursor))
        for asset in page.items:
            if asset.site_id in zones:
                described = describe(
                    asset.id, asset.type, asset.config, asset.site_id, zones[asset.site_id]
                )
                if described is not None:
                    fleet.append(described)
        cursor = page.next_cursor
        if cursor is None:
            return fleet


# --- the sender ---------------------------------------------------------------------------


def points_of(fleet: Iterable[SimAsset], t_s: int, every_s: int) -> Iterator[dict[str, Any]]:
    """The JSON points of one tick: one per asset that has something to say."""
    t_ms = t_s * 1000
    models = MODELS
    for asset in fleet:
        values = models[asset.type](asset, t_s, every_s)
        if values is not None:
            yield {"asset": asset.asset_id, "time": t_ms, "values": values}


def batches_of(
    fleet: Iterable[SimAsset], t_s: int, every_s: int, size: int
) -> Iterator[tuple[int, bytes]]:
    """The tick's points as JSON bodies of at most ``size`` points: (count, body)."""
    batch: list[dict[str, Any]] = []
    for point in points_of(fleet, t_s, every_s):
        batch.append(point)
        if len(batch) == size:
            yield len(batch), _body(batch)
            batch = []
    if batch:
        yield len(batch), _body(batch)


def _body(points: list[dict[str, Any]]) -> bytes:
    return json.dumps({"points": points}, separators=(",", ":")).encode()


class Fatal(Exception):
    """The server refuses the simulator itself (a bad token): stop."""


@dataclass
class Stats:
    """Counts since start, updated by the sending threads."""

    points: int = 0
    batches: int = 0
    retries: int = 0
    errors: int = 0
    dropped: int = 0  # points of batches refused for good (each one reported)
    late_ticks: int = 0  # ticks skipped because the previous one was still sending
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


class Connection:
    """One keep-alive HTTP connection to the server, reopened after a failure."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str, bytes]:
        """(status, Retry-After header, body); raises OSError / HTTPException on failure.

        A kept-alive connection the server closed meanwhile is reopened and the request
        sent again at once (a resent batch is harmless: a point written twice is one)."""
        reused = self._connection is not None
        try:
            response = self._send(method, path, body)
        except (OSError, http.client.HTTPException):
            self.close()
            if not reused:
                raise
            response = self._send(method, path, body)
        status, retry_after, content, will_close = response
        if will_close:
            self.close()
        return status, retry_after, content

    def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, str, bytes, bool]:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout_s)
        try:
            self._connection.request(method, self._prefix + path, body, self._headers)
            response = self._connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        retry_after = response.getheader("Retry-After", "")
        return response.status, retry_after, content, response.will_close

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


RETRIED: Final = frozenset({429, 502, 503, 504})
MAX_BACKOFF_S: Final = 30.0
STOP_WAIT_S: Final = 5.0  # how long a stop waits for a request in flight


def _retry_after(header: str, default: float) -> float:
    try:
        return min(max(float(header), 0.0), MAX_BACKOFF_S)
    except ValueError:
        return default


def _reason(content: bytes) -> str:
    try:
        problem = json.loads(content)
    except ValueError:
        return content[:200].decode(errors="replace")
    if not isinstance(problem, dict):
        return str(problem)[:200]
    errors = problem.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or "")
    return f"{detail} {first.get('path', '')} {first.get('message', '')}".strip()[:300]


def deliver(
    connection: Connection,
    body: bytes,
    count: int,
    stats: Stats,
    stop: threading.Event,
    report: Callable[[str], None],
) -> bool:
    """POST one batch until it is taken (True). Resends after 429/502/503/504 and network
    failures; a refusal of the batch itself (4xx) is reported and counted as dropped;
    401/403 raise Fatal. False when stopped before the batch was taken."""
    backoff = 1.0
    while not stop.is_set():
        try:
            status, retry_after, content = connection.request("POST", "/api/v1/telemetry", body)
        except (OSError, http.client.HTTPException) as exc:
            stats.add(errors=1, retries=1)
            report(f"cannot reach the server ({exc}); retrying in {backoff:g} s")
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        if status == 200:
            stats.add(points=count, batches=1)
            return True
        if status in RETRIED:
            stats.add(retries=1)
            stop.wait(_retry_after(retry_after, backoff))
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            continue
        if status in (401, 403):
            raise Fatal(f"the server refuses the simulator's token ({status}): {_reason(content)}")
        stats.add(errors=1, dropped=count)
        report(f"a batch of {count} points was refused ({status}): {_reason(content)}")
        return True
    return False


class Simulator:
    """Every ``every_s`` seconds, one reading per asset, sent in batches of ``batch``
    over ``connections`` keep-alive connections. ``run`` returns when ``stop`` is set."""

    def __init__(
        self,
        fleet: list[SimAsset],
        *,
        base_url: str,
        token: str,
        every_s: int,
        batch: int = 5000,
        connections: int = 4,
        progress_s: float = 60.0,
        echo: Callable[[str], None] = print,
        stop: threading.Event | None = None,
    ) -> None:
        self.fleet = fleet
        self.base_url = base_url
        self.every_s = every_s
        self.batch = batch
        self.progress_s = progress_s
        self.echo = echo
        self.stop = stop or threading.Event()
        self.stats = Stats()
        self.fatal: Fatal | None = None
        self._token = token
        self._queue: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=2 * connections)
        self._senders = [
            threading.Thread(target=self._send, name=f"simulate-{n}", daemon=True)
            for n in range(connections)
        ]
        self._reported = 0

    def wait_healthy(self) -> bool:
        """Poll ``GET /health`` until it answers 200; False if stopped first."""
        connection = Connection(self.base_url, "", timeout_s=2.0)
        said = False
        try:
            while not self.stop.is_set():
                try:
                    if connection.request("GET", "/health")[0] == 200:
                        return True
                except (OSError, http.client.HTTPException):
                    pass
                if not said:
                    self.echo(f"simulate: waiting for {self.base_url}/health")
                    said = True
                self.stop.wait(0.5)
            return False
        finally:
            connection.close()

    def run(self) -> Stats:
        for sender in self._senders:
            sender.start()
        next_report = time.monotonic() + self.progress_s
        last = (0, time.monotonic())
        tick = int(time.time()) // self.every_s * self.every_s
        try:
            while not self.stop.is_set():
                self.send_tick(tick)
                if time.monotonic() >= next_report:
                    last = self._progress(last)
                    next_report += self.progress_s
                tick += self.every_s
                now = time.time()
                if now >= tick + self.every_s:  # still sending when the next was due
                    skipped = int(now - tick) // self.every_s
                    self.stats.add(late_ticks=skipped)
                    tick += skipped * self.every_s
                self.stop.wait(max(tick - time.time(), 0.0))
        finally:
            self.stop.set()
            for sender in self._senders:  # daemons: one stuck in a request is left behind
                sender.join(timeout=STOP_WAIT_S)
        if self.fatal is not None:
            raise self.fatal
        return self.stats

    def send_tick(self, t_s: int) -> None:
        """Generate and hand over the tick's batches; return once all are taken or stopped."""
        for count, body in batches_of(self.fleet, t_s, self.every_s, self.batch):
            if self.stop.is_set():
                break
            while not self.stop.is_set():
                try:
                    self._queue.put((count, body), timeout=0.5)
                    break
                except queue.Full:
                    continue
        while self._queue.unfinished_tasks and not self.stop.wait(0.02):
            pass

    def _send(self) -> None:
        connection = Connection(self.base_url, self._token)
        try:
            while not self.stop.is_set():
                try:
                    count, body = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    deliver(connection, body, count, self.stats, self.stop, self._report)
                except Fatal as exc:
                    self.fatal = exc
                    self.stop.set()
                finally:
                    self._queue.task_done()
        finally:
            connection.close()

    def _report(self, message: str) -> None:
        """Errors go out at once, but at most 10 per progress period (the rest are counted)."""
        with self.stats.lock:
            self._reported += 1
            show = self._reported <= 10
        if show:
            self.echo(f"simulate: {message}")

    def _progress(self, last: tuple[int, float]) -> tuple[int, float]:
        points, since = last
        now, s = time.monotonic(), self.stats
        rate = (s.points - points) / max(now - since, 1e-9)
        self.echo(
            f"simulate: {s.points:,} points sent ({rate:,.0f}/s lately), "
            f"{s.batches:,} batches, {s.retries:,} retries, {s.errors:,} errors, "
            f"{s.dropped:,} points refused, {s.late_ticks:,} ticks skipped"
        )
        with s.lock:
            self._reported = 0
        return s.points, now

"""The demo simulator: plausible telemetry for the demo fleet, sent like a device sends it.

The values come from the pure model in ``simulator_model.py``. This module loads the
fleet (the assets the simulator's principal may read, as the model's constants) and
sends it.

The **sender** posts one reading per asset per tick to ``POST /api/v1/telemetry`` over a
few keep-alive connections, resends a batch refused with 429/503 (after ``Retry-After``)
until it is taken or the simulator is stopped, and never drops a batch without saying so.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from outpost.identity.principal import Principal
from outpost.inventory import queries
from outpost.inventory.schemas import AssetFilter, SiteFilter
from outpost.telemetry.simulator_model import MODELS, SimAsset, describe

#: What the simulator's API token may do: send telemetry, nothing else.
TOKEN_PERMISSIONS: Final = ("telemetry.write",)

# --- the fleet --------------------------------------------------------------------------


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


# --- the sender -------------------------------------------------------------------------


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

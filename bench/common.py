"""Shared plumbing: results, fresh databases, the demo fleet, a real server, an HTTP client."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from outpost.db import Database
from outpost.demo import ADMIN_EMAIL, DEMO_ORG, seed_demo
from outpost.migrate import upgrade

PG_SERVER = os.environ.get("OUTPOST_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PG_PREFIX = "outpost_bench"
BIN = Path(sys.executable).parent
OUTPOST = str(BIN / "outpost")
ENGINES = ("sqlite", "postgres")

# The demo fleet is 500 sites of 50 assets: 25,000 assets. --quick uses fewer sites.
FULL_SITES = 500
QUICK_SITES = 100


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One figure: ``passed`` is None for figures reported without a target."""

    bench: str
    figure: str
    measured: float
    unit: str
    target: str = "-"
    passed: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"

    def shown(self) -> str:
        if self.unit == "ms":
            text = f"{self.measured:.2f} ms"
        elif self.unit == "s":
            text = f"{self.measured:.3f} s"
        elif self.unit == "x":
            text = f"{self.measured:,.0f}x"
        elif self.unit == "ratio":
            text = f"{self.measured:.2f}"
        elif self.unit == "exit":
            text = f"exit {int(self.measured)}"
        else:
            text = f"{self.measured:,.0f}{(' ' + self.unit) if self.unit else ''}"
        return text


def at_most(bench: str, figure: str, measured: float, limit: float, unit: str) -> Result:
    return Result(bench, figure, measured, unit, f"<= {limit:g} {unit}", measured <= limit)


def at_least(bench: str, figure: str, measured: float, limit: float, unit: str) -> Result:
    return Result(bench, figure, measured, unit, f">= {limit:g}{unit}", measured >= limit)


def info(bench: str, figure: str, measured: float, unit: str, note: str = "") -> Result:
    return Result(bench, figure, measured, unit, "-", None, note)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_results(
    bench: str, label: str, samples_ms: Sequence[float], targets: dict[str, float]
) -> list[Result]:
    """p50/p95/p99/mean/max of ``samples_ms``, with targets for some of them."""
    figures = {
        "p50": percentile(samples_ms, 50),
        "p95": percentile(samples_ms, 95),
        "p99": percentile(samples_ms, 99),
        "mean": sum(samples_ms) / len(samples_ms),
        "max": max(samples_ms),
    }
    out = []
    for key, value in figures.items():
        figure = f"{label} {key} (n={len(samples_ms)})"
        if key in targets:
            out.append(at_most(bench, figure, value, targets[key], "ms"))
        else:
            out.append(info(bench, figure, value, "ms"))
    return out


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


# --- per-run context and fresh databases -----------------------------------------------------


@dataclass
class Context:
    engine: str
    quick: bool
    workdir: Path
    log: Callable[[str], None]
    _databases: list[str] = field(default_factory=list)

    @property
    def fleet_sites(self) -> int:
        return QUICK_SITES if self.quick else FULL_SITES

    def fresh_database(self, name: str) -> str:
        """A new, empty, migrated database; its URL."""
        if self.engine == "sqlite":
            path = self.workdir / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            database = f"{PG_PREFIX}_{name}"
            recreate_pg_database(database)
            self._databases.append(database)
            url = f"{PG_SERVER}/{database}"
        upgrade(url)
        return url

    def copy_database(self, url: str, name: str) -> str:
        """A byte-for-byte copy of a database nobody is connected to."""
        if self.engine == "sqlite":
            source = Path(url.removeprefix("sqlite:///"))
            target = self.workdir / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
                if Path(f"{source}{suffix}").exists():
                    Path(f"{target}{suffix}").write_bytes(Path(f"{source}{suffix}").read_bytes())
            return f"sqlite:///{target}"
        database = f"{PG_PREFIX}_{name}"
        template = url.rsplit("/", 1)[1]
        with _pg_admin() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(database), sql.Identifier(template)
                )
            )
        self._databases.append(database)
        return f"{PG_SERVER}/{database}"

    def cleanup(self) -> None:
        for database in self._databases:
            with contextlib.suppress(psycopg.Error), _pg_admin() as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
        self._databases.clear()


@contextlib.contextmanager
def _pg_admin() -> Iterator[psycopg.Connection[Any]]:
    dsn = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def recreate_pg_database(database: str) -> None:
    with _pg_admin() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def check_postgres() -> str:
    with _pg_admin() as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def seeded_fleet(ctx: Context, name: str) -> tuple[str, float]:
    """A fresh database holding the demo fleet; its URL and how long the seed took."""
    url = ctx.fresh_database(name)
    database = Database.connect(url)
    try:
        with Timer() as timer, database.unit_of_work() as session:
            seed_demo(session, sites=ctx.fleet_sites)
    finally:
        database.dispose()
    ctx.log(f"seeded {ctx.fleet_sites} sites on {ctx.engine} in {timer.seconds:.1f} s")
    return url, timer.seconds


# --- a real server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def outpost_env(ctx: Context, url: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: this one, the bench database and data dir, then ``extra_env``."""
    data_dir = ctx.workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "OUTPOST_DATABASE_URL": url,
        "OUTPOST_DATA_DIR": str(data_dir),
        "OUTPOST_SECRET_KEY": "bench-secret-key",
        **(extra_env or {}),
    }


def create_token(ctx: Context, url: str) -> str:
    done = subprocess.run(
        [OUTPOST, "token", "create", "--org", DEMO_ORG, "--email", ADMIN_EMAIL, "--name", "bench"],
        env=outpost_env(ctx, url),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class Server:
    port: int
    token: str
    process: subprocess.Popen[bytes]

    def client(self) -> Client:
        return Client(self.port, self.token)


@contextlib.contextmanager
def running_server(
    ctx: Context, url: str, name: str, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``outpost serve --workers 2 --threads 4`` on ``url``, and an admin API token.

    ``extra_env`` is added to the server's environment (e.g. ``OUTPOST_FILE_STORE``).
    """
    token = create_token(ctx, url)
    port = free_port()
    log_path = ctx.workdir / f"server-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [OUTPOST, "serve", "--port", str(port), "--workers", "2", "--threads", "4"],
            env=outpost_env(ctx, url, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(port, token, process)
    try:
        _wait_until_up(server, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_up(server: Server, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited; see {log_path}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not come up in {timeout:.0f} s; see {log_path}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP/1.1 connection, used from one thread."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.reconnects = 0
        self._connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send and read the whole response; ``seconds`` covers exactly that."""
        payload = None if body is None else json.dumps(body).encode()
        sent = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if payload is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        for attempt in range(2):
            try:
                start = time.perf_counter()
                self._connection.request(method, path, body=payload, headers=sent)
                response = self._connection.getresponse()
                data = response.read()
                seconds = time.perf_counter() - start
                break
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect (not timed).
                if attempt:
                    raise
                self.reconnects += 1
                self._connection.close()
                self._connection = self._connect()
        headers_out = {k.lower(): v for k, v in response.getheaders()}
        return Response(response.status, headers_out, data, seconds)

    def close(self) -> None:
        self._connection.close()


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        raise RuntimeError(f"{what}: HTTP {response.status}: {response.body[:500]!r}")
    return response

"""Run the real ``outpost serve`` (gunicorn, several worker processes) for a test.

The server is a subprocess started from the ``outpost`` console script installed next to
the running interpreter, so it exercises exactly what an operator runs: gunicorn, its
worker processes and threads, and the engine options of :meth:`Database.connect`.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        """A new keep-alive connection to the server (one per thread: they are not shared)."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def outpost_command() -> list[str]:
    """The ``outpost`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("outpost")
    if not script.exists():
        raise RuntimeError(f"no outpost console script next to {sys.executable}; pip install -e .")
    return [str(script)]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(host: str, port: int) -> bool:
    """``GET /health`` answers 200."""
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


@contextmanager
def running_server(
    database_url: str,
    data_dir: Path,
    *,
    scope_locking: bool = True,
    workers: int = 2,
    threads: int = 4,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Start ``outpost serve`` on a free port, wait for ``GET /health``, stop it on exit.

    ``scope_locking=False`` sets ``OUTPOST_UNSAFE_SCOPE_LOCKING=false``: only for the
    concurrency test's negative control. The server's output goes to ``data_dir/server.log``.
    """
    host, port = "127.0.0.1", free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OUTPOST_DATABASE_URL": database_url,
        "OUTPOST_DATA_DIR": str(data_dir),
        "OUTPOST_SECRET_KEY": "test",
        "OUTPOST_UNSAFE_SCOPE_LOCKING": "true" if scope_locking else "false",
        "OUTPOST_EMBEDDED_WORKER": "false",
        **(extra_env or {}),
    }
    command = [
        *outpost_command(),
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(host, port, log_path)
    try:
        wait_until_ready(process, lambda: healthy(host, port), "outpost serve", server.log_tail)
        yield server
    finally:
        stop(process)


def wait_until_ready(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Callable[[], str]
) -> None:
    """Poll ``ready`` until it holds; fail with the log if ``process`` exits or times out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready:\n{log()}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn's graceful shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

"""A private Mosquitto broker per test, configured by Outpost's own file generator.

The broker is the real ``mosquitto`` binary on a free loopback port (never the system
one on 1883), with ``allow_anonymous false`` and the password and ACL files that
``outpost.connectivity.mosquitto`` writes, persistence off. ``Broker.update`` rewrites
the files from credentials and makes the broker reload them (SIGHUP), returning once
its log says it did.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from outpost.connectivity.mosquitto import write_broker_files
from support.server import STARTUP_TIMEOUT_S, free_port, stop, wait_until_ready

MOSQUITTO = shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin:/usr/bin") or ""
INGESTER_USERNAME = "outpost-ingester"
INGESTER_PASSWORD = "ingester-test-password"
_RELOADED = "Reloading config"


@dataclass
class Broker:
    host: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def password_file(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.directory / "acl"

    @property
    def log_file(self) -> Path:
        return self.directory / "mosquitto.log"

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for path in (self.directory / "stderr.log", self.log_file):
            text += path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def write_files(self, entries: Sequence[tuple[str, str]]) -> None:
        write_broker_files(
            entries,
            self.password_file,
            self.acl_file,
            ingester_username=INGESTER_USERNAME,
            ingester_password=INGESTER_PASSWORD,
        )

    def update(self, entries: Sequence[tuple[str, str]]) -> None:
        """Rewrite the files for ``entries`` (``live_broker_entries``) and reload them."""
        self.write_files(entries)
        reloads = self._reloads()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while self._reloads() == reloads:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not reload:\n{self.log_tail()}")
            time.sleep(0.05)

    def _reloads(self) -> int:
        if not self.log_file.exists():
            return 0
        return self.log_file.read_text(errors="replace").count(_RELOADED)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def running_mosquitto(
    directory: Path, entries: Sequence[tuple[str, str]] = (), *, persistent: bool = False
) -> Iterator[Broker]:
    """Start a private broker with the files for ``entries``; stop it on exit. With
    ``persistent``, it keeps sessions and queued messages in ``directory`` (so they
    survive a consumer's crash, as in production)."""
    if not MOSQUITTO:
        pytest.skip("no mosquitto binary")
    host, port = "127.0.0.1", free_port()
    directory.mkdir(parents=True, exist_ok=True)
    broker = Broker(host, port, directory, process=None)  # type: ignore[arg-type]
    broker.write_files(entries)
    persistence = (
        f"persistence true\npersistence_location {directory}/\n"
        if persistent
        else "persistence false\n"
    )
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} {host}\n"
        "allow_anonymous false\n"
        f"password_file {broker.password_file}\n"
        f"acl_file {broker.acl_file}\n"
        f"{persistence}"
        # Started as root, mosquitto would switch to the "mosquitto" user, which may not
        # read files of mode 0600 under this test's tmp directory: stay who we are.
        f"user {getpass.getuser()}\n"
        f"log_dest file {broker.log_file}\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "max_inflight_messages 0\n"
        "max_queued_messages 0\n"
    )
    with (directory / "stderr.log").open("wb") as stderr:
        broker.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)], stdout=stderr, stderr=subprocess.STDOUT
        )
    try:
        wait_until_ready(broker.process, lambda: _accepts(host, port), "mosquitto", broker.log_tail)
        yield broker
    finally:
        stop(broker.process)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A private broker that knows only the ingester until ``update`` adds devices."""
    with running_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker

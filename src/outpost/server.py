"""Run the app under gunicorn from Python, so ``outpost serve`` needs no config file."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from outpost.app import create_app
from outpost.settings import Settings


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app()


def _start_worker(arbiter: Any) -> None:
    """Embedded default: ``serve`` runs the background jobs in a child ``outpost worker``."""
    command = [sys.executable, "-m", "outpost", "worker", "--parent-pid", str(os.getpid())]
    arbiter.outpost_worker = subprocess.Popen(command)  # noqa: S603 (our own interpreter)


def _stop_worker(arbiter: Any) -> None:
    worker: subprocess.Popen[bytes] | None = getattr(arbiter, "outpost_worker", None)
    if worker is not None:
        worker.terminate()
        worker.wait(timeout=10)


def run(*, host: str, port: int, workers: int, threads: int) -> None:
    hooks: dict[str, Any] = {}
    if Settings.from_env().embedded_worker:
        hooks = {"when_ready": _start_worker, "on_exit": _stop_worker}
    _Server(
        {
            **hooks,
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "timeout": 60,
        }
    ).run()

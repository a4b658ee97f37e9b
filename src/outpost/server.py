"""Run the app under gunicorn from Python, so ``outpost serve`` needs no config file."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
import sys
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from outpost.settings import Settings

#: Paths whose last segment is a bearer secret: expiring links, signed downloads and
#: invitation links.
SECRET_PATH = re.compile(r"/(l|dl|invite)/[^/\s?]+")
#: InfluxDB v1 clients may send a credential as the ``p`` query parameter of ``/write``.
SECRET_PARAMETER = re.compile(r"([?&]p=)[^&\s]*")


class RedactingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with link tokens and download signatures blanked in access logs."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        found: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {
            atom: _redacted(value) if isinstance(value, str) else value
            for atom, value in found.items()
        }


def _redacted(value: str) -> str:
    return SECRET_PARAMETER.sub(r"\1[redacted]", SECRET_PATH.sub(r"/\1/[redacted]", value))


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Import the app in the workers only: the master stays small."""
        from outpost.app import create_app

        return create_app()


def _start_worker(arbiter: Any) -> None:
    """Embedded default: ``serve`` runs the background jobs in a child ``outpost worker``."""
    command = [sys.executable, "-m", "outpost", "worker", "--interval", "300"]
    command += ["--parent-pid", str(os.getpid())]
    arbiter.outpost_worker = subprocess.Popen(command)  # noqa: S603 (our own interpreter)


def _stop_worker(arbiter: Any) -> None:
    worker: subprocess.Popen[bytes] | None = getattr(arbiter, "outpost_worker", None)
    if worker is not None:
        worker.terminate()
        worker.wait(timeout=10)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def _return_big_buffers(_server: Any, _worker: Any) -> None:
    """Keep a worker's memory flat across large transfers (glibc only).

    glibc raises its mmap threshold after big blocks are freed, so the 8 MiB buffers of
    S3 multipart parts end up on heaps it keeps. A fixed threshold returns them.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def run(*, host: str, port: int, workers: int, threads: int) -> None:
    hooks: dict[str, Any] = {"post_fork": _return_big_buffers}
    if Settings.from_env().embedded_worker:
        hooks.update(when_ready=_start_worker, on_exit=_stop_worker)
    _Server(
        {
            **hooks,
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "logger_class": RedactingLogger,
            "timeout": 60,
        }
    ).run()

"""Telemetry load generators that run in client processes of their own.

The server under test (gunicorn) and the client share the machine's cores but not a
GIL: each client process holds one keep-alive HTTP/1.1 connection and sends prepared
bodies. A body is a template with ``@T@`` where the batch's timestamp goes (one
``bytes.replace`` per request), so building a request costs the client next to nothing.

Two shapes:

* ``closed_loop``: send as fast as the answers come back until a deadline (throughput);
* ``paced``: send batch ``i`` at ``start + i * period`` (an open-loop offered rate); a
  late send (the previous answer came back after the next slot) is recorded as lateness:
  that is the backlog building up on the client's side.

Only the standard library is imported here, so a process started with ``fork`` or
``spawn`` stays small.
"""

from __future__ import annotations

import http.client
import multiprocessing
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

PLACEHOLDER = b"@T@"
#: Ceiling on one request: the answer of a batch never takes this long on a healthy server.
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Target:
    """Where a body goes and which answer means it was stored."""

    port: int
    path: str
    headers: tuple[tuple[str, str], ...]
    ok: tuple[int, ...] = (200, 204)
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Templates:
    """Batch bodies, each holding ``values`` field values and ``PLACEHOLDER`` as its time.

    ``time_of(batch)`` is the timestamp text of batch number ``batch`` (in the unit the
    target expects), so every batch of a run has its own time and no point is rewritten.
    """

    bodies: tuple[bytes, ...]
    values: tuple[int, ...]

    def body(self, number: int, stamp: int) -> tuple[bytes, int]:
        index = number % len(self.bodies)
        return self.bodies[index].replace(PLACEHOLDER, str(stamp).encode()), self.values[index]


@dataclass
class Sample:
    """One request: when it was due, sent and answered (``time.monotonic``), its status."""

    due: float
    sent: float
    done: float
    status: int
    values: int


@dataclass
class ClientRun:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)  # status -> count


def _connect(target: Target) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection(target.host, target.port, timeout=REQUEST_TIMEOUT_S)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _post(connection: http.client.HTTPConnection, target: Target, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", target.path, body=body, headers=dict(target.headers))
    response = connection.getresponse()
    return response.status, response.read()


def _record(run: ClientRun, target: Target, sample: Sample, answer: bytes) -> None:
    if sample.status in target.ok:
        run.samples.append(sample)
        return
    run.refused[sample.status] = run.refused.get(sample.status, 0) + 1
    if len(run.errors) < 5:
        run.errors.append(f"HTTP {sample.status}: {answer[:300]!r}")


def closed_loop(
    target: Target,
    templates: Templates,
    stamps: Sequence[int],
    start_at: float,
    deadline: float,
) -> ClientRun:
    """From ``start_at`` (monotonic), post batch after batch until ``deadline``.

    Batch ``n`` is ``templates.body(n)`` stamped ``stamps[n]``; refused batches (e.g. 503
    when the store's queue is full) are counted and the next one is sent 50 ms later.
    """
    run = ClientRun()
    connection = _connect(target)
    time.sleep(max(0.0, start_at - time.monotonic()))
    number = 0
    try:
        while (now := time.monotonic()) < deadline and number < len(stamps):
            body, values = templates.body(number, stamps[number])
            status, answer = _post(connection, target, body)
            _record(run, target, Sample(now, now, time.monotonic(), status, values), answer)
            if status not in target.ok:
                time.sleep(0.05)
            number += 1
    except (OSError, http.client.HTTPException) as exc:
        run.errors.append(f"{exc.__class__.__name__}: {exc}")
    finally:
        connection.close()
    return run


def paced(
    target: Target,
    templates: Templates,
    numbers: Sequence[int],
    stamps: Sequence[int],
    start_at: float,
    period: float,
) -> ClientRun:
    """Send ``templates.body(numbers[i])`` stamped ``stamps[i]`` at ``start_at + i * period``
    (or as soon as the previous answer is in, when that is later)."""
    run = ClientRun()
    connection = _connect(target)
    try:
        for i, (number, stamp) in enumerate(zip(numbers, stamps, strict=True)):
            due = start_at + i * period
            time.sleep(max(0.0, due - time.monotonic()))
            body, values = templates.body(number, stamp)
            sent = time.monotonic()
            status, answer = _post(connection, target, body)
            _record(run, target, Sample(due, sent, time.monotonic(), status, values), answer)
    except (OSError, http.client.HTTPException) as exc:
        run.errors.append(f"{exc.__class__.__name__}: {exc}")
    finally:
        connection.close()
    return run


_T = TypeVar("_T")


def in_processes(jobs: Sequence[Callable[[], _T]]) -> list[_T]:
    """Run each job (a ``functools.partial`` of a function above) in a process of its own,
    all at once; their results in order. ``fork``: a child starts in milliseconds."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=context) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result() for future in futures]

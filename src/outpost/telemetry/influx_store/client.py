"""The InfluxDB store's HTTP side: one keep-alive client on the v1 API (``/write``,
``/query``), and how InfluxDB's answers map to Outpost's errors."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from outpost.telemetry.influx_store.syntax import ident
from outpost.telemetry.store import StoreOverloaded, StoreUnavailable

log = logging.getLogger(__name__)


class InfluxError(Exception):
    """InfluxDB refused a request as malformed (a bug here, not an outage)."""


@dataclass(frozen=True, slots=True)
class Rows:
    """One series of a ``/query`` answer."""

    statement: int
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]


class InfluxClient:
    """InfluxDB's v1 HTTP API on one database, thread-safe: one keep-alive
    ``httpx.Client`` is shared by every thread."""

    def __init__(
        self,
        url: str,
        *,
        database: str,
        username: str,
        password: str,
        timeout: float,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.url = url
        self.database = database
        self._client = httpx.Client(
            base_url=self.url,
            auth=httpx.BasicAuth(username, password) if username or password else None,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers={"User-Agent": "outpost-telemetry"},
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def write_body(self, body: bytes) -> None:
        self._ensure_database()
        params = {"db": self.database, "precision": "ns"}
        response = self._request("POST", "/write", params=params, content=body)
        if response.status_code == 404 and "database not found" in response.text:
            self._ready = False
            self._ensure_database()
            response = self._request("POST", "/write", params=params, content=body)
        if response.is_success:
            return
        message = _error_message(response)
        if response.status_code == 400:
            raise InfluxError(f"InfluxDB refused the write: {message}")
        raise StoreUnavailable(f"InfluxDB refused the write ({response.status_code}): {message}")

    def select(self, q: str) -> Iterator[Rows]:
        """Run read-only InfluxQL (GET), yielding every series of every statement."""
        self._ensure_database()
        params = {"db": self.database, "q": q, "epoch": "ns", "chunked": "true"}
        response = self._request("GET", "/query", params=params)
        for answer in _answers(response):
            for result in answer.get("results", []):
                error = result.get("error")
                if error:
                    if "database not found" in error:
                        continue
                    raise InfluxError(f"InfluxDB refused the query: {error}")
                for series in result.get("series", []):
                    yield Rows(
                        int(result.get("statement_id", 0)),
                        series.get("name", ""),
                        series.get("tags") or {},
                        series.get("columns", []),
                        series.get("values", []),
                    )

    def execute(self, q: str) -> None:
        """Run InfluxQL that changes something (POST)."""
        self._ensure_database()
        response = self._request("POST", "/query", params={"db": self.database}, data={"q": q})
        for answer in _answers(response):
            for result in answer.get("results", []):
                if result.get("error"):
                    raise InfluxError(f"InfluxDB refused {q.split()[0]}: {result['error']}")

    def _ensure_database(self) -> None:
        """``CREATE DATABASE`` once (idempotent on 1.x; 2.x and 3.x have no such thing:
        the bucket / database must exist or be created by the first write)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            response = self._request(
                "POST", "/query", data={"q": f"CREATE DATABASE {ident(self.database)}"}
            )
            if not response.is_success:
                log.info(
                    "CREATE DATABASE %s refused (%s): %s",
                    self.database,
                    response.status_code,
                    _error_message(response),
                )
            self._ready = True

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        status = response.status_code
        if status in (429, 503):
            raise StoreOverloaded(
                f"InfluxDB is overloaded ({status}): {_error_message(response)}",
                retry_after=_retry_after(response, 1),
            )
        if status >= 500 or status in (401, 403):
            raise StoreUnavailable(
                f"InfluxDB answered {status}: {_error_message(response)}",
                retry_after=_retry_after(response, 5),
            )
        if status >= 400 and path == "/query":
            raise InfluxError(f"InfluxDB refused the query ({status}): {_error_message(response)}")
        return response


def _answers(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON objects of a (possibly chunked, one object per line) ``/query`` answer."""
    for line in response.text.splitlines():
        if line.strip():
            answer: dict[str, Any] = json.loads(line)
            if answer.get("error"):
                raise InfluxError(f"InfluxDB refused the query: {answer['error']}")
            yield answer


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:500]
    return str(body)[:500]


def _retry_after(response: httpx.Response, default: int) -> int:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else default

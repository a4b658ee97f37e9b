"""The ``store`` fixture: a fresh, empty ``TelemetryStore`` per test, over every engine.

SQLite gets a file under the test's tmp_path. InfluxDB gets a database of its own on
the server that the ``influx_url`` fixture (``tests/support/influx.py``) runs; the
case is skipped where that fixture or the InfluxDB store is not available.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import TelemetryStore


def _sqlite_store(request: pytest.FixtureRequest) -> TelemetryStore:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return SQLiteTelemetryStore(tmp_path / "telemetry.db")


def _influx_store(request: pytest.FixtureRequest) -> TelemetryStore:
    try:
        module = importlib.import_module("outpost.telemetry.influx_store")
    except ImportError as exc:
        pytest.skip(f"the InfluxDB store is not available: {exc}")
    try:
        influx_url: str = request.getfixturevalue("influx_url")
    except pytest.FixtureLookupError:
        pytest.skip("no influx_url fixture: no InfluxDB server for the tests")
    store: TelemetryStore = module.InfluxTelemetryStore(
        influx_url,
        database=f"outpost_test_{uuid.uuid4().hex[:12]}",
        username="",
        password="",
    )
    return store


@pytest.fixture(params=["sqlite", "influxdb"])
def store(request: pytest.FixtureRequest) -> Iterator[TelemetryStore]:
    opened = _sqlite_store(request) if request.param == "sqlite" else _influx_store(request)
    yield opened
    opened.close()

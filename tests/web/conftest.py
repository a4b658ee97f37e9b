"""Fixtures for page tests: users logged in through the real login form, and a small fleet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from support.server import running_server
from support.web import SmallFleet, build_small_fleet, log_in


def _logged_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    response = log_in(client, f"{role}@acme-solar.test")
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


@pytest.fixture
def admin(app: Flask, tenant: Any) -> FlaskClient:
    return _logged_in(app, "admin")


@pytest.fixture
def operator(app: Flask, tenant: Any) -> FlaskClient:
    return _logged_in(app, "operator")


@pytest.fixture
def viewer(app: Flask, tenant: Any) -> FlaskClient:
    return _logged_in(app, "viewer")


@pytest.fixture
def fleet(client: FlaskClient, tenant: Any) -> SmallFleet:
    return build_small_fleet(client, tenant.headers())


@pytest.fixture
def server(database_url: str, tmp_path: Path, db: object) -> Iterator[str]:
    """The real ``outpost serve`` on this test's database (for the browser tests)."""
    with running_server(database_url, tmp_path, workers=1) as running:
        yield running.base_url

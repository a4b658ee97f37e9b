"""Fixtures for page tests: users logged in through the real login form, and a small fleet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet import post

PASSWORD = "correct horse battery"


def csrf(client: FlaskClient) -> str:
    cookie = client.get_cookie("outpost_csrf")
    if cookie is None:
        client.get("/login")
        cookie = client.get_cookie("outpost_csrf")
    assert cookie is not None
    return cookie.value


def log_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
    )


def post_form(client: FlaskClient, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf(client)}, **kwargs)


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


@dataclass
class SmallFleet:
    site: dict[str, Any]
    gateway: dict[str, Any]
    controller: dict[str, Any]
    sensor: dict[str, Any]


def build_small_fleet(client: FlaskClient, headers: dict[str, str], code: str = "P1") -> SmallFleet:
    site = post(
        client,
        "/api/v1/sites",
        {
            "name": f"Plant {code}",
            "code": code,
            "timezone": "Europe/Paris",
            "grid_connection_kw": 500,
        },
        headers,
    )
    gateway = post(
        client,
        "/api/v1/assets",
        {
            "site_id": site["id"],
            "type": "gateway",
            "name": f"{code} gateway",
            "serial": f"{code}-GW1",
            "config": {
                "ip": "10.0.0.1",
                "subnet": "10.0.0.0/24",
                "upload_interval_s": 60,
                "max_controllers": 2,
                "max_bus_devices": 4,
            },
        },
        headers,
    )
    controller = post(
        client,
        "/api/v1/assets",
        {
            "site_id": site["id"],
            "type": "controller",
            "parent_id": gateway["id"],
            "name": f"{code} controller",
            "serial": f"{code}-CT1",
            "config": {"channels": 8, "ip": "10.0.0.2"},
        },
        headers,
    )
    sensor = post(
        client,
        "/api/v1/assets",
        {
            "site_id": site["id"],
            "type": "sensor",
            "parent_id": controller["id"],
            "name": f"{code} temperature",
            "serial": f"{code}-SN1",
            "config": {
                "channel": 1,
                "kind": "temperature",
                "unit": "degC",
                "sampling_interval_s": 30,
            },
        },
        headers,
    )
    return SmallFleet(site, gateway, controller, sensor)


@pytest.fixture
def fleet(client: FlaskClient, tenant: Any) -> SmallFleet:
    return build_small_fleet(client, tenant.headers())

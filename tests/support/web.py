"""Page-test helpers: logging in through the real form, CSRF-echoing posts, a small fleet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

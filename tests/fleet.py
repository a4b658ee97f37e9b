"""Build small valid fleets through the HTTP API for tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient


@dataclass
class Fleet:
    site: dict[str, Any]
    gateway: dict[str, Any]
    controller: dict[str, Any]
    sensor: dict[str, Any]
    meter: dict[str, Any]
    inverter: dict[str, Any]
    reader: dict[str, Any]
    badge: dict[str, Any]


def post(
    client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def etag(client: FlaskClient, path: str, headers: dict[str, str]) -> str:
    return str(client.get(path, headers=headers).headers["ETag"])


def patch(
    client: FlaskClient,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    if_match: str | None = None,
) -> Any:
    """A JSON merge patch sent with If-Match: the given ETag, or the one a GET returns now."""
    return client.patch(
        path, json=body, headers={**headers, "If-Match": if_match or etag(client, path, headers)}
    )


def build_fleet(client: FlaskClient, headers: dict[str, str], code: str = "P1") -> Fleet:
    site = post(
        client,
        "/api/v1/sites",
        {
            "name": f"Plant {code}",
            "code": code,
            "timezone": "Europe/Paris",
            "grid_connection_kw": 100,
        },
        headers,
    )

    def asset(
        type_: str, name: str, parent: dict[str, Any] | None, config: dict[str, Any]
    ) -> dict[str, Any]:
        return post(
            client,
            "/api/v1/assets",
            {
                "site_id": site["id"],
                "parent_id": parent["id"] if parent else None,
                "type": type_,
                "name": name,
                "serial": f"{code}-{name}",
                "config": config,
            },
            headers,
        )

    gateway = asset(
        "gateway",
        "gw",
        None,
        {
            "ip": "10.0.0.1",
            "subnet": "10.0.0.0/24",
            "upload_interval_s": 60,
            "max_controllers": 2,
            "max_bus_devices": 3,
        },
    )
    controller = asset("controller", "ctl", gateway, {"channels": 4, "ip": "10.0.0.2"})
    sensor = asset(
        "sensor",
        "temp",
        controller,
        {"channel": 0, "kind": "temperature", "unit": "degC", "sampling_interval_s": 30},
    )
    meter = asset("meter", "meter", gateway, {"modbus_address": 1, "ct_ratio": 100, "phases": 3})
    inverter = asset("inverter", "inv", gateway, {"modbus_address": 2, "rated_power_kw": 60})
    reader = asset(
        "badge_reader", "door", controller, {"channel": 1, "door": "Main", "zone": "lobby"}
    )
    badge = asset("badge", "badge", None, {"holder": "Ana", "zones": ["lobby"]})
    return Fleet(site, gateway, controller, sensor, meter, inverter, reader, badge)


def codes(response: Any) -> set[str]:
    return {e["code"] for e in response.get_json().get("errors", [])}

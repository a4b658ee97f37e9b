"""Ingestion over HTTP: device identity, JSON batches, line protocol, refusals."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet import Fleet, build_fleet
from outpost.connectivity.models import DeviceCredential
from outpost.telemetry.store import (
    Reading,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
    TelemetryStore,
)
from outpost.web.context import Services
from support.api import assert_problem, error_codes
from support.tenants import Tenant

SECOND = 1_000_000_000


@pytest.fixture
def fleet(client: FlaskClient, tenant: Tenant) -> Fleet:
    return build_fleet(client, tenant.headers())


def _store(app: Flask) -> TelemetryStore:
    services: Services = app.extensions["outpost"]
    return services.telemetry


def _issue(client: FlaskClient, tenant: Tenant, asset_id: str) -> str:
    response = client.post(f"/api/v1/assets/{asset_id}/credentials", headers=tenant.headers())
    assert response.status_code == 201, response.get_json()
    secret: str = response.get_json()["secret"]
    return secret


def _device(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _batch(*points: tuple[str, dict[str, Any], Any]) -> dict[str, Any]:
    return {
        "points": [
            {"asset": asset, "values": values, **({"time": at} if at is not None else {})}
            for asset, values, at in points
        ]
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _latest(app: Flask, org_id: str, asset_id: str) -> dict[str, Reading]:
    return {r.metric: r for r in _store(app).latest(org_id, [asset_id])}


def test_a_credential_is_shown_once_and_stored_hashed(
    client: FlaskClient, tenant: Tenant, fleet: Fleet, db: Any
) -> None:
    response = client.post(
        f"/api/v1/assets/{fleet.inverter['id']}/credentials", headers=tenant.headers()
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    issued = response.get_json()
    secret = issued["secret"]
    assert secret.startswith("opd_") and len(secret) >= 50  # 256 random bits
    assert issued["mqtt_username"] == fleet.inverter["id"]
    assert issued["mqtt_topic"] == f"outpost/devices/{fleet.inverter['id']}/telemetry"
    listed = client.get(
        f"/api/v1/assets/{fleet.inverter['id']}/credentials", headers=tenant.headers()
    ).get_json()["items"]
    assert [c["id"] for c in listed] == [issued["id"]]
    assert secret not in json.dumps(listed)
    with db.unit_of_work(write=False) as session:
        stored = session.get(DeviceCredential, issued["id"])
        assert stored is not None
        assert secret not in stored.secret_hash and secret not in stored.broker_hash
        assert stored.broker_hash.startswith("$7$")


def test_a_device_writes_its_own_telemetry(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    at = _now_ms() - 5_000
    response = client.post(
        "/api/v1/telemetry",
        json=_batch(
            (fleet.inverter["id"], {"ac_power_kw": 12.5, "dc_voltage_v": 612}, at),
            (fleet.inverter["serial"], {"energy_total_kwh": 1234.5}, at),
        ),
        headers=_device(secret),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"accepted": 3}
    latest = _latest(app, tenant.org_id, fleet.inverter["id"])
    assert {m: r.value for m, r in latest.items()} == {
        "ac_power_kw": 12.5,
        "dc_voltage_v": 612.0,
        "energy_total_kwh": 1234.5,
    }
    assert latest["ac_power_kw"].time_ns == at * 1_000_000


def test_duplicate_deliveries_are_idempotent(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.meter["id"])
    start = (_now_ms() - 60_000) * 1_000_000
    body = _batch((fleet.meter["id"], {"active_power_w": 500.0}, start // 1_000_000))
    for _ in range(3):
        assert (
            client.post("/api/v1/telemetry", json=body, headers=_device(secret)).status_code == 200
        )

    series = _store(app).query(
        SeriesQuery(tenant.org_id, (fleet.meter["id"],), ("active_power_w",), start, start + 1)
    )
    assert [(s.times_ns, s.values) for s in series] == [([start], [500.0])]


def test_a_gateway_writes_for_the_assets_below_it_only(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    other = build_fleet(client, tenant.headers(), code="P2")
    secret = _issue(client, tenant, fleet.gateway["id"])
    ok = client.post(
        "/api/v1/telemetry",
        json=_batch(
            (fleet.inverter["id"], {"ac_power_kw": 3.0}, None),
            (fleet.sensor["id"], {"value": 21.5}, None),
            (fleet.gateway["id"], {"cpu_load_pct": 12}, None),
        ),
        headers=_device(secret),
    )
    assert ok.status_code == 200 and ok.get_json() == {"accepted": 3}

    refused = client.post(
        "/api/v1/telemetry",
        json=_batch(
            (fleet.meter["id"], {"active_power_w": 10.0}, None),
            (other.inverter["id"], {"ac_power_kw": 4.0}, None),
        ),
        headers=_device(secret),
    )
    body = assert_problem(refused, 403)
    assert other.inverter["id"] in body["detail"]
    assert [e["object_id"] for e in body["errors"]] == [other.inverter["id"]]
    assert _latest(app, tenant.org_id, fleet.meter["id"]) == {}  # nothing of the batch
    assert _latest(app, tenant.org_id, other.inverter["id"]) == {}


def test_a_device_may_not_write_for_another_device(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    response = client.post(
        "/api/v1/telemetry",
        json=_batch(
            (fleet.inverter["id"], {"ac_power_kw": 3.0}, None),
            (fleet.meter["serial"], {"active_power_w": 1.0}, None),
        ),
        headers=_device(secret),
    )
    body = assert_problem(response, 403)
    assert fleet.meter["id"] in body["detail"]
    assert _latest(app, tenant.org_id, fleet.inverter["id"]) == {}


def test_rotation_and_revocation_end_the_old_secret(
    client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    first = _issue(client, tenant, fleet.inverter["id"])
    second = _issue(client, tenant, fleet.inverter["id"])
    body = _batch((fleet.inverter["id"], {"ac_power_kw": 1.0}, None))
    assert_problem(client.post("/api/v1/telemetry", json=body, headers=_device(first)), 401)
    assert client.post("/api/v1/telemetry", json=body, headers=_device(second)).status_code == 200
    listed = client.get(
        f"/api/v1/assets/{fleet.inverter['id']}/credentials", headers=tenant.headers()
    ).get_json()["items"]
    assert [c["revoked_at"] is None for c in listed] == [True, False]
    revoked = client.delete(
        f"/api/v1/assets/{fleet.inverter['id']}/credentials/{listed[0]['id']}",
        headers=tenant.headers(),
    )
    assert revoked.status_code == 204
    assert_problem(client.post("/api/v1/telemetry", json=body, headers=_device(second)), 401)


def test_a_device_credential_opens_nothing_but_ingestion(
    client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    assert_problem(client.get("/api/v1/assets", headers=_device(secret)), 401)
    assert_problem(client.get("/api/v1/telemetry/latest", headers=_device(secret)), 401)


def test_credentials_need_asset_write_and_stay_in_the_tenant(
    client: FlaskClient, tenant: Tenant, other_tenant: Tenant, fleet: Fleet
) -> None:
    path = f"/api/v1/assets/{fleet.inverter['id']}/credentials"
    assert_problem(client.post(path, headers=tenant.headers("viewer")), 403)
    assert client.get(path, headers=tenant.headers("viewer")).status_code == 200
    assert_problem(client.post(path, headers=other_tenant.headers()), 404)
    assert_problem(client.get(path, headers=other_tenant.headers()), 404)


def test_users_write_with_telemetry_write(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    body = _batch((fleet.sensor["id"], {"value": 19.0}, None))
    assert client.post("/api/v1/telemetry", json=body, headers=tenant.headers()).status_code == 200
    assert_problem(
        client.post("/api/v1/telemetry", json=body, headers=tenant.headers("viewer")), 403
    )
    assert _latest(app, tenant.org_id, fleet.sensor["id"])["value"].value == 19.0


def test_a_token_narrowed_to_telemetry_write_can_write(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    issued = client.post(
        "/api/v1/tokens",
        json={"name": "telegraf", "permissions": ["telemetry.write"]},
        headers=tenant.headers(),
    )
    assert issued.status_code == 201, issued.get_json()
    headers = {"Authorization": f"Bearer {issued.get_json()['token']}"}
    body = _batch((fleet.sensor["serial"], {"value": 7.0}, None))
    assert client.post("/api/v1/telemetry", json=body, headers=headers).status_code == 200
    assert _latest(app, tenant.org_id, fleet.sensor["id"])["value"].value == 7.0


def test_another_tenants_asset_is_unknown(
    client: FlaskClient, tenant: Tenant, other_tenant: Tenant, fleet: Fleet
) -> None:
    body = _batch((fleet.sensor["id"], {"value": 19.0}, None))
    refused = client.post("/api/v1/telemetry", json=body, headers=other_tenant.headers())
    assert error_codes(assert_problem(refused, 422)) == {"telemetry.unknown_asset"}


@pytest.mark.parametrize(
    ("values", "at_offset_ms", "code"),
    [
        ({"ac_power_kw": "12"}, 0, "telemetry.wrong_type"),
        ({"ac_power_kw": True}, 0, "telemetry.wrong_type"),
        ({"ac_power_kw": 1e9}, 0, "telemetry.out_of_range"),
        ({"dc_voltage_v": -5}, 0, "telemetry.out_of_range"),
        ({"power": 1.0}, 0, "telemetry.unknown_metric"),
        ({"ac_power_kw": 1.0}, 11 * 60_000, "telemetry.in_future"),
        ({"ac_power_kw": 1.0}, -31 * 86_400_000, "telemetry.before_retention"),
    ],
)
def test_invalid_values_are_refused_and_nothing_is_stored(
    app: Flask,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    values: dict[str, Any],
    at_offset_ms: int,
    code: str,
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    body = _batch(
        (fleet.inverter["id"], {"energy_total_kwh": 5.0}, None),
        (fleet.inverter["id"], values, _now_ms() + at_offset_ms),
    )
    body_json = assert_problem(
        client.post("/api/v1/telemetry", json=body, headers=_device(secret)), 422
    )
    assert error_codes(body_json) == {code}
    assert body_json["errors"][0]["path"].startswith("points[1].values.")
    assert _latest(app, tenant.org_id, fleet.inverter["id"]) == {}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet, literal: str
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    point = f'{{"asset": "{fleet.inverter["id"]}", "values": {{"ac_power_kw": {literal}}}}}'
    raw = f'{{"points": [{point}]}}'
    response = client.post(
        "/api/v1/telemetry",
        data=raw,
        headers={**_device(secret), "Content-Type": "application/json"},
    )
    assert error_codes(assert_problem(response, 422)) == {"telemetry.not_finite"}
    assert _latest(app, tenant.org_id, fleet.inverter["id"]) == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"points": [{"asset": 5, "values": {"x": 1}}]}', 400),
        (b'{"points": [{"asset": "a", "values": {}}]}', 400),
        (b'{"points": [{"asset": "a", "time": "yesterday", "values": {"x": 1}}]}', 400),
        (b'{"points": [{"asset": "a", "time": "2026-11-23T10:00:00", "values": {"x": 1}}]}', 400),
    ],
)
def test_malformed_batches_are_400(
    client: FlaskClient, tenant: Tenant, fleet: Fleet, body: bytes, status: int
) -> None:
    response = client.post(
        "/api/v1/telemetry",
        data=body,
        headers={**tenant.headers(), "Content-Type": "application/json"},
    )
    assert_problem(response, status)


def test_wrong_content_type_and_oversized_batches(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    assert_problem(client.post("/api/v1/telemetry", data="x", headers=tenant.headers()), 415)
    limit = app.extensions["outpost"].settings.telemetry_max_batch_points
    big = _batch(*[(fleet.sensor["id"], {"value": 1.0}, _now_ms() - i) for i in range(limit + 1)])
    assert_problem(client.post("/api/v1/telemetry", json=big, headers=tenant.headers()), 413)


@pytest.mark.parametrize("failure", [StoreOverloaded("queue full", 2), StoreUnavailable("down", 7)])
def test_a_busy_or_unreachable_store_is_503_with_retry_after(
    app: Flask,
    client: FlaskClient,
    tenant: Tenant,
    fleet: Fleet,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
) -> None:
    store = _store(app)

    def refuse(points: object) -> None:
        raise failure

    monkeypatch.setattr(store, "write", refuse)
    body = _batch((fleet.sensor["id"], {"value": 1.0}, None))
    response = client.post("/api/v1/telemetry", json=body, headers=tenant.headers())
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == str(failure.retry_after)  # type: ignore[attr-defined]


# --- line protocol ---------------------------------------------------------------------


def _auth_variants(secret: str) -> list[tuple[dict[str, str], str]]:
    basic = base64.b64encode(f"telegraf:{secret}".encode()).decode()
    return [
        ({"Authorization": f"Bearer {secret}"}, ""),
        ({"Authorization": f"Token {secret}"}, ""),
        ({"Authorization": f"Basic {basic}"}, ""),
        ({}, f"&u=telegraf&p={secret}"),
    ]


def test_line_protocol_takes_every_influxdb_way_of_sending_a_credential(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    now_s = time.time_ns() // SECOND
    for offset, (headers, params) in enumerate(_auth_variants(secret)):
        line = f"inverter,asset={fleet.inverter['serial']} ac_power_kw={offset}.5 {now_s - offset}"
        response = client.post(
            f"/api/v1/write?db=telegraf&precision=s{params}", data=line, headers=headers
        )
        assert response.status_code == 204, (offset, response.data)
    latest = _latest(app, tenant.org_id, fleet.inverter["id"])["ac_power_kw"]
    assert (latest.value, latest.time_ns) == (0.5, now_s * SECOND)


def test_line_protocol_partial_writes_name_each_bad_line(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.gateway["id"])
    now_ns = time.time_ns()
    body = "\n".join(
        [
            f"m,asset={fleet.inverter['id']} ac_power_kw=7.5,dc_voltage_v=600 {now_ns}",
            f"m,asset={fleet.inverter['id']} ac_power_kw= {now_ns}",
            f"m,asset={fleet.sensor['serial']} value=21.25 {now_ns}",
            f"m,asset={fleet.sensor['id']} value=1e12 {now_ns}",
        ]
    )
    response = client.post("/api/v1/write", data=body, headers=_device(secret))
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"].startswith("partial write: line 2: ")
    assert "line 4: " in error["error"] and error["error"].endswith("dropped=2")
    assert error["accepted"] == 3
    assert [e["path"] for e in error["errors"]] == ["line 2", "line 4"]
    assert _latest(app, tenant.org_id, fleet.inverter["id"])["ac_power_kw"].value == 7.5
    assert _latest(app, tenant.org_id, fleet.sensor["id"])["value"].value == 21.25


def test_line_protocol_refuses_the_whole_batch_for_a_foreign_asset(
    app: Flask, client: FlaskClient, tenant: Tenant, fleet: Fleet
) -> None:
    secret = _issue(client, tenant, fleet.inverter["id"])
    body = (
        f"m,asset={fleet.inverter['id']} ac_power_kw=7.5\n"
        f"m,asset={fleet.meter['id']} active_power_w=1"
    )
    refused = client.post("/api/v1/write", data=body, headers=_device(secret))
    assert fleet.meter["id"] in assert_problem(refused, 403)["detail"]
    assert _latest(app, tenant.org_id, fleet.inverter["id"]) == {}


def test_line_protocol_without_a_credential_is_401(client: FlaskClient) -> None:
    assert_problem(client.post("/api/v1/write", data="m,asset=x v=1"), 401)
    assert_problem(client.post("/api/v1/write?p=opd_nope_nope", data="m,asset=x v=1"), 401)

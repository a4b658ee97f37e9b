"""The device credential pages: issue (secret shown once), list, revoke."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from support.tenants import Tenant
from support.web import build_small_fleet, log_in, post_form


def test_an_operator_issues_and_revokes_a_device_credential(
    client: FlaskClient, tenant: Tenant
) -> None:
    fleet = build_small_fleet(client, tenant.headers())
    sensor = fleet.sensor["id"]
    log_in(client, "operator@acme-solar.test")
    assert "Device credentials" in client.get(f"/assets/{sensor}").get_data(as_text=True)
    empty = client.get(f"/assets/{sensor}/credentials").get_data(as_text=True)
    assert "No credential yet" in empty

    issued = post_form(client, f"/assets/{sensor}/credentials", {})
    assert issued.status_code == 201
    assert issued.headers["Cache-Control"] == "no-store"
    page = issued.get_data(as_text=True)
    secret = re.search(r'value="(opd_[^"]+)"', page)
    assert secret is not None
    assert f"outpost/devices/{sensor}/telemetry" in page

    listed = client.get(f"/assets/{sensor}/credentials").get_data(as_text=True)
    assert secret.group(1) not in listed and "live" in listed
    sent = client.post(
        "/api/v1/telemetry",
        json={"points": [{"asset": sensor, "values": {"value": 20.5}}]},
        headers={"Authorization": f"Bearer {secret.group(1)}"},
    )
    assert sent.status_code == 200

    credential_id = client.get(
        f"/api/v1/assets/{sensor}/credentials", headers=tenant.headers()
    ).get_json()["items"][0]["id"]
    revoked = post_form(client, f"/assets/{sensor}/credentials/{credential_id}/revoke", {})
    assert revoked.status_code == 303
    assert "revoked" in client.get(revoked.headers["Location"]).get_data(as_text=True)
    refused = client.post(
        "/api/v1/telemetry",
        json={"points": [{"asset": sensor, "values": {"value": 20.5}}]},
        headers={"Authorization": f"Bearer {secret.group(1)}"},
    )
    assert refused.status_code == 401


def test_a_viewer_sees_the_credentials_but_cannot_issue(
    client: FlaskClient, tenant: Tenant
) -> None:
    fleet = build_small_fleet(client, tenant.headers())
    sensor = fleet.sensor["id"]
    log_in(client, "viewer@acme-solar.test")
    page = client.get(f"/assets/{sensor}/credentials").get_data(as_text=True)
    assert "Issue a credential" not in page
    assert post_form(client, f"/assets/{sensor}/credentials", {}).status_code == 403

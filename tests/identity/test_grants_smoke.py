from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from fleet import build_fleet
from outpost.clock import utcnow
from support.tenants import Tenant


def test_smoke(client: FlaskClient, tenant: Tenant) -> None:
    fleet = build_fleet(client, tenant.headers())
    me = client.get("/api/v1/me", headers=tenant.headers("viewer")).get_json()
    body = {
        "user_id": me["user_id"],
        "role": "operator",
        "site_id": fleet.site["id"],
        "expires_at": (utcnow() + timedelta(hours=4)).isoformat(),
        "reason": "fix the inverter",
    }
    made = client.post("/api/v1/grants", json=body, headers=tenant.headers("operator"))
    assert made.status_code == 201, made.get_json()
    listed = client.get("/api/v1/grants", headers=tenant.headers("viewer")).get_json()
    assert len(listed["items"]) == 1

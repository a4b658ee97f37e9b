"""API tokens expire within a bounded lifetime and can be narrowed to some permissions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from outpost.clock import utcnow
from support.files import PDF, put_file


def _create(client: FlaskClient, tenant: Any, role: str = "operator", **body: Any) -> Any:
    return client.post(
        "/api/v1/tokens", json={"name": "integration", **body}, headers=tenant.headers(role)
    )


def test_a_token_expires_in_90_days_by_default_and_never_later(
    client: FlaskClient, tenant: Any
) -> None:
    made = _create(client, tenant)
    assert made.status_code == 201
    expires = made.get_json()["expires_at"]
    in_days = (utcnow() + timedelta(days=90)).date().isoformat()
    assert expires.startswith(in_days)
    too_long = _create(client, tenant, expires_in_days=91)
    assert too_long.status_code == 400
    assert too_long.get_json()["errors"][0]["code"] == "token.expiry_invalid"


def test_a_scoped_token_can_only_use_its_permissions(client: FlaskClient, tenant: Any) -> None:
    made = _create(client, tenant, permissions=["site.read", "asset.read"])
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["permissions"] == ["asset.read", "site.read"]
    headers = {"Authorization": f"Bearer {made.get_json()['token']}"}

    assert client.get("/api/v1/sites", headers=headers).status_code == 200
    me = client.get("/api/v1/me", headers=headers).get_json()
    assert me["permissions"] == ["asset.read", "site.read"]
    refused = client.post("/api/v1/sites", json={"name": "Plant S", "code": "S1"}, headers=headers)
    assert refused.status_code == 403
    assert "do not hold site.write" in refused.get_json()["detail"]
    put_file(client, tenant.headers(), PDF, name="plan.pdf")
    assert client.get("/api/v1/files", headers=headers).get_json()["items"] == []
    assert client.get("/api/v1/files", headers=tenant.headers()).get_json()["items"] != []


def test_a_token_cannot_carry_what_its_user_lacks(client: FlaskClient, tenant: Any) -> None:
    refused = _create(client, tenant, "viewer", permissions=["site.read", "site.write"])
    assert refused.status_code == 400
    assert [e["code"] for e in refused.get_json()["errors"]] == ["token.permission_not_held"]
    unknown = _create(client, tenant, permissions=["root.everything"])
    assert unknown.status_code == 422


def test_token_writes_are_audited_with_the_token(client: FlaskClient, tenant: Any) -> None:
    created = client.post(
        "/api/v1/sites", json={"name": "Plant T", "code": "T1"}, headers=tenant.headers()
    )
    assert created.status_code == 201
    events = client.get("/api/v1/audit?action=inventory.site.created", headers=tenant.headers())
    (event,) = events.get_json()["items"]
    assert event["actor_type"] == "token"
    assert event["actor_id"].startswith("tok_")

"""Lists for principals holding several subtrees, or a subtree through a narrowed token:
each subtree filter is a recursive query of its own (a regression: two used to clash)."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import update

from fleet import build_fleet
from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity import grants
from outpost.identity.models import ApiToken
from outpost.identity.roles import NO_ROLE
from outpost.identity.secrets import digest
from support.grants import add_member
from support.tenants import Tenant, insert_token


def _give_subtree(db: Database, tenant: Tenant, user_id: str, asset_id: str) -> None:
    with db.unit_of_work() as session:
        spec = grants.GrantSpec(
            user_id=user_id,
            role="viewer",
            reason="two subtrees",
            asset_id=asset_id,
            expires_at=utcnow() + timedelta(hours=1),
        )
        grants.create_grant(session, tenant.admin_actor, spec)


def _listed(client: FlaskClient, headers: dict[str, str]) -> set[str]:
    response = client.get("/api/v1/assets", query_string={"limit": 500}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return {asset["id"] for asset in response.get_json()["items"]}


def test_two_subtrees_list_both_and_nothing_else(
    client: FlaskClient, db: Database, tenant: Tenant
) -> None:
    first = build_fleet(client, tenant.headers(), "P1")
    second = build_fleet(client, tenant.headers(), "P2")
    member = add_member(db, tenant, "two-trees", NO_ROLE)
    _give_subtree(db, tenant, member.user_id, first.controller["id"])
    _give_subtree(db, tenant, member.user_id, second.controller["id"])
    under = {fleet.controller["id"] for fleet in (first, second)} | {
        fleet.sensor["id"] for fleet in (first, second)
    }
    seen = _listed(client, member.headers)
    assert under <= seen
    assert first.gateway["id"] not in seen and second.gateway["id"] not in seen
    sites = client.get("/api/v1/sites", headers=member.headers).get_json()["items"]
    assert {site["id"] for site in sites} == {first.site["id"], second.site["id"]}


def test_a_token_narrowed_to_a_subtree_within_a_subtree_grant(
    client: FlaskClient, db: Database, tenant: Tenant
) -> None:
    fleet = build_fleet(client, tenant.headers(), "P1")
    member = add_member(db, tenant, "gateway-holder", NO_ROLE)
    _give_subtree(db, tenant, member.user_id, fleet.gateway["id"])
    with db.unit_of_work() as session:
        secret = insert_token(session, tenant.org_id, member.user_id)
        session.flush()
        session.execute(
            update(ApiToken)
            .where(ApiToken.secret_hash == digest(secret))
            .values(asset_id=fleet.controller["id"])
        )
    narrowed = {"Authorization": f"Bearer {secret}"}
    seen = _listed(client, narrowed)
    assert {fleet.controller["id"], fleet.sensor["id"]} <= seen
    assert fleet.gateway["id"] not in seen
    assert _listed(client, member.headers) >= {fleet.gateway["id"], fleet.controller["id"]}
    gateway = client.get(f"/api/v1/assets/{fleet.gateway['id']}", headers=narrowed)
    assert gateway.status_code == 404

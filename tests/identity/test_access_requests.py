"""Access requests through the API: ask, approve (which gives the grant), deny, cancel,
lapse after 72 hours, and who may decide what. Every step leaves its audit event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fleet import Fleet, build_fleet, patch
from outpost.clock import frozen, utcnow
from outpost.db import Database
from outpost.identity import custom_roles
from outpost.identity.requests import MAX_PENDING, REQUEST_TTL, expire_requests
from support.api import assert_problem
from support.grants import add_member, user_id_of
from support.tenants import Tenant

BASE = "/api/v1/access-requests"


def ask(client: FlaskClient, headers: dict[str, str], **body: Any) -> TestResponse:
    return client.post(
        BASE,
        json={"role": "operator", "duration_minutes": 60, "reason": "fix the inverter", **body},
        headers=headers,
    )


def asked(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = ask(client, headers, **body)
    assert response.status_code == 201, response.get_json()
    made: dict[str, Any] = response.get_json()
    return made


def decide(
    client: FlaskClient, request_id: str, verb: str, headers: dict[str, str], reason: str = "ok"
) -> TestResponse:
    body = None if verb == "cancel" else {"reason": reason}
    return client.post(f"{BASE}/{request_id}/{verb}", json=body, headers=headers)


def audit_events(client: FlaskClient, tenant: Tenant, action: str) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/audit", query_string={"action": action}, headers=tenant.headers()
    )
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


@pytest.fixture
def fleets(client: FlaskClient, tenant: Tenant) -> tuple[Fleet, Fleet]:
    return build_fleet(client, tenant.headers(), "P1"), build_fleet(client, tenant.headers(), "P2")


# --- the happy path ---------------------------------------------------------------------


def test_approval_gives_the_grant_on_that_site_only(
    client: FlaskClient, tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    first, second = fleets
    viewer, operator = tenant.headers("viewer"), tenant.headers("operator")
    site_path = f"/api/v1/sites/{first.site['id']}"
    assert patch(client, site_path, {"name": "Before"}, viewer).status_code == 403

    made = asked(client, viewer, site_id=first.site["id"])
    assert made["status"] == "pending" and made["user_id"] == user_id_of(client, viewer)
    assert made["grant_id"] is None
    listed = client.get(BASE, query_string={"status": "pending"}, headers=operator).get_json()
    assert [item["id"] for item in listed["items"]] == [made["id"]]

    approved = decide(client, made["id"], "approve", operator, "go ahead")
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["status"] == "approved" and body["decision_reason"] == "go ahead"
    assert body["decided_by"] == user_id_of(client, operator) and body["decided_at"]

    grant = client.get(f"/api/v1/grants/{body['grant_id']}", headers=viewer).get_json()
    assert grant["active"] and grant["role"] == "operator"
    assert grant["site_id"] == first.site["id"] and grant["granted_by"] == body["decided_by"]
    assert made["id"] in grant["reason"]

    assert patch(client, site_path, {"name": "After"}, viewer).status_code == 200
    other = patch(client, f"/api/v1/sites/{second.site['id']}", {"name": "No"}, viewer)
    assert_problem(other, 403)

    assert len(audit_events(client, tenant, "identity.access_request.created")) == 1
    assert len(audit_events(client, tenant, "identity.grant.created")) == 1
    [event] = audit_events(client, tenant, "identity.access_request.approved")
    assert event["object_id"] == made["id"] and event["reason"] == "go ahead"
    assert event["before"]["status"] == "pending" and event["after"]["status"] == "approved"


def test_a_member_with_no_role_may_ask(
    client: FlaskClient, tenant: Tenant, db: Database, fleets: tuple[Fleet, Fleet]
) -> None:
    first, second = fleets
    nobody = add_member(db, tenant, "nobody", "none")
    assert_problem(client.get(f"/api/v1/sites/{first.site['id']}", headers=nobody.headers), 404)
    made = asked(client, nobody.headers, role="viewer", site_id=first.site["id"])
    assert decide(client, made["id"], "approve", tenant.headers()).status_code == 200
    assert (
        client.get(f"/api/v1/sites/{first.site['id']}", headers=nobody.headers).status_code == 200
    )
    assert_problem(client.get(f"/api/v1/sites/{second.site['id']}", headers=nobody.headers), 404)


# --- deny and cancel --------------------------------------------------------------------


def test_deny_gives_nothing_and_closes_the_request(
    client: FlaskClient, tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    site_id = fleets[0].site["id"]
    viewer, operator = tenant.headers("viewer"), tenant.headers("operator")
    made = asked(client, viewer, site_id=site_id)
    assert_problem(decide(client, made["id"], "deny", operator, reason=""), 422)

    denied = decide(client, made["id"], "deny", operator, "not this week")
    assert denied.status_code == 200, denied.get_json()
    assert denied.get_json()["status"] == "denied"
    assert denied.get_json()["decision_reason"] == "not this week"
    assert denied.get_json()["grant_id"] is None
    assert client.get("/api/v1/grants", headers=viewer).get_json()["items"] == []
    assert_problem(decide(client, made["id"], "approve", operator), 409)
    assert_problem(decide(client, made["id"], "cancel", viewer), 409)
    assert len(audit_events(client, tenant, "identity.access_request.denied")) == 1


def test_cancel_is_the_requesters_alone(
    client: FlaskClient, tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    viewer, operator = tenant.headers("viewer"), tenant.headers("operator")
    made = asked(client, viewer, site_id=fleets[0].site["id"])
    assert_problem(decide(client, made["id"], "cancel", operator), 403)

    cancelled = decide(client, made["id"], "cancel", viewer)
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"
    assert_problem(decide(client, made["id"], "cancel", viewer), 409)
    assert_problem(decide(client, made["id"], "approve", operator), 409)
    [event] = audit_events(client, tenant, "identity.access_request.cancelled")
    assert event["actor_id"] != "system" and event["after"]["status"] == "cancelled"


# --- who may decide ---------------------------------------------------------------------


def test_nobody_approves_their_own_request(
    client: FlaskClient, tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    operator = tenant.headers("operator")
    made = asked(client, operator, role="admin", site_id=fleets[0].site["id"])
    body = assert_problem(decide(client, made["id"], "approve", operator), 403)
    assert "own" in body["detail"]
    assert_problem(decide(client, made["id"], "deny", operator), 403)
    assert client.get(f"{BASE}/{made['id']}", headers=operator).get_json()["status"] == "pending"
    assert audit_events(client, tenant, "identity.grant.created") == []


def test_approvers_are_those_who_hold_grant_create_on_the_scope(
    client: FlaskClient, tenant: Tenant, db: Database, fleets: tuple[Fleet, Fleet]
) -> None:
    first, second = fleets
    viewer = tenant.headers("viewer")
    site_op = add_member(db, tenant, "siteop", "none")
    standing = client.post(
        "/api/v1/grants",
        json={
            "user_id": site_op.user_id,
            "role": "operator",
            "site_id": first.site["id"],
            "reason": "runs plant P1",
        },
        headers=tenant.headers(),
    )
    assert standing.status_code == 201, standing.get_json()
    elsewhere = asked(client, viewer, site_id=second.site["id"])
    here = asked(client, viewer, site_id=first.site["id"])

    seen = client.get(BASE, headers=site_op.headers).get_json()["items"]
    assert [item["id"] for item in seen] == [here["id"]]
    assert_problem(client.get(f"{BASE}/{elsewhere['id']}", headers=site_op.headers), 404)
    assert_problem(decide(client, elsewhere["id"], "approve", site_op.headers), 404)
    assert_problem(decide(client, elsewhere["id"], "approve", tenant.headers("viewer")), 403)
    assert decide(client, here["id"], "approve", site_op.headers).status_code == 200


def test_a_member_manager_without_grant_create_sees_but_cannot_decide(
    client: FlaskClient, tenant: Tenant, db: Database, fleets: tuple[Fleet, Fleet]
) -> None:
    with db.unit_of_work() as session:
        custom_roles.create_role(
            session, tenant.admin_actor, name="people", permissions=["member.manage"]
        )
    people = add_member(db, tenant, "people", "people")
    made = asked(client, tenant.headers("viewer"), site_id=fleets[0].site["id"])
    assert client.get(f"{BASE}/{made['id']}", headers=people.headers).status_code == 200
    assert_problem(decide(client, made["id"], "approve", people.headers), 403)
    assert_problem(decide(client, made["id"], "deny", people.headers), 403)


def test_the_approver_cannot_give_more_than_they_hold(client: FlaskClient, tenant: Tenant) -> None:
    made = asked(client, tenant.headers("viewer"), role="admin")  # the whole organization
    refused = decide(client, made["id"], "approve", tenant.headers("operator"))
    assert refused.status_code in {400, 422}, refused.get_json()
    codes = {error["code"] for error in refused.get_json()["errors"]}
    assert codes == {"grant.permission_not_held"}
    view = client.get(f"{BASE}/{made['id']}", headers=tenant.headers("viewer")).get_json()
    assert view["status"] == "pending"


def test_other_tenants_never_see_a_request(
    client: FlaskClient, tenant: Tenant, other_tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    made = asked(client, tenant.headers("viewer"), site_id=fleets[0].site["id"])
    outsider = other_tenant.headers()
    assert_problem(client.get(f"{BASE}/{made['id']}", headers=outsider), 404)
    assert_problem(decide(client, made["id"], "approve", outsider), 404)
    assert client.get(BASE, headers=outsider).get_json()["items"] == []


# --- listing ----------------------------------------------------------------------------


def test_list_filters_and_pages(
    client: FlaskClient, tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    viewer, operator = tenant.headers("viewer"), tenant.headers("operator")
    site_id = fleets[0].site["id"]
    older = asked(client, viewer, site_id=site_id)
    newer = asked(client, viewer, site_id=site_id, role="technician")
    own = asked(client, operator, role="admin")
    assert decide(client, older["id"], "deny", operator).status_code == 200

    def ids_of(headers: dict[str, str], **query: Any) -> list[str]:
        response = client.get(BASE, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids_of(operator) == [own["id"], newer["id"], older["id"]]
    assert ids_of(tenant.headers(), status="pending") == [own["id"], newer["id"]]
    assert ids_of(operator, mine="true") == [own["id"]]
    assert ids_of(viewer) == [newer["id"], older["id"]]
    assert ids_of(viewer, status="denied") == [older["id"]]

    first = client.get(BASE, query_string={"limit": 1}, headers=viewer).get_json()
    assert [item["id"] for item in first["items"]] == [newer["id"]] and first["next_cursor"]
    rest = client.get(
        BASE, query_string={"limit": 1, "cursor": first["next_cursor"]}, headers=viewer
    ).get_json()
    assert [item["id"] for item in rest["items"]] == [older["id"]]
    assert rest["next_cursor"] is None
    assert_problem(client.get(BASE, query_string={"cursor": "nope"}, headers=viewer), 400)


# --- lapsing ----------------------------------------------------------------------------


def test_an_unanswered_request_expires(
    client: FlaskClient, tenant: Tenant, db: Database, fleets: tuple[Fleet, Fleet]
) -> None:
    viewer, operator = tenant.headers("viewer"), tenant.headers("operator")
    made = asked(client, viewer, site_id=fleets[0].site["id"])
    assert expire_requests(db) == 0

    with frozen(utcnow() + REQUEST_TTL + timedelta(minutes=1)):
        view = client.get(f"{BASE}/{made['id']}", headers=viewer).get_json()
        assert view["status"] == "expired"  # before any sweep
        expired = client.get(BASE, query_string={"status": "expired"}, headers=operator)
        assert [item["id"] for item in expired.get_json()["items"]] == [made["id"]]
        pending = client.get(BASE, query_string={"status": "pending"}, headers=operator)
        assert pending.get_json()["items"] == []
        assert_problem(decide(client, made["id"], "approve", operator), 409)
        assert_problem(decide(client, made["id"], "deny", operator), 409)
        assert_problem(decide(client, made["id"], "cancel", viewer), 409)

        assert expire_requests(db) == 1
        assert expire_requests(db) == 0
        view = client.get(f"{BASE}/{made['id']}", headers=viewer).get_json()
        assert view["status"] == "expired"

    [event] = audit_events(client, tenant, "identity.access_request.expired")
    assert event["actor_type"] == "system" and event["object_id"] == made["id"]
    assert event["after"]["status"] == "expired"
    assert audit_events(client, tenant, "identity.grant.created") == []


def test_open_requests_are_capped(
    client: FlaskClient, tenant: Tenant, fleets: tuple[Fleet, Fleet]
) -> None:
    viewer = tenant.headers("viewer")
    made = [asked(client, viewer, site_id=fleets[0].site["id"]) for _ in range(MAX_PENDING)]
    body = assert_problem(ask(client, viewer, site_id=fleets[0].site["id"]), 409)
    assert body["errors"][0]["code"] == "access_request.too_many_pending"
    assert decide(client, made[0]["id"], "cancel", viewer).status_code == 200
    assert ask(client, viewer, site_id=fleets[0].site["id"]).status_code == 201


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"role": "overlord"}, "access_request.role_unknown"),
        ({"role": "none"}, "access_request.role_empty"),
        ({"reason": ""}, "field.string_too_short"),
        ({"reason": "   "}, "field.string_too_short"),
        ({"reason": "x" * 501}, "field.string_too_long"),
        ({"duration_minutes": 7 * 24 * 60 + 1}, "access_request.duration_out_of_range"),
        ({"duration_minutes": 0}, "field.greater_than_equal"),
        ({"duration_minutes": 10**30}, "field.less_than_equal"),
        ({"duration_minutes": "soon"}, "field.int_parsing"),
        ({"both": True}, "access_request.scope_twice"),
        ({"extra": 1}, "field.extra_forbidden"),
    ],
)
def test_bad_input_is_a_422_with_its_violation(
    client: FlaskClient,
    tenant: Tenant,
    fleets: tuple[Fleet, Fleet],
    body: dict[str, Any],
    code: str,
) -> None:
    fleet = fleets[0]
    if body.pop("both", False):
        body = {"site_id": fleet.site["id"], "asset_id": fleet.sensor["id"]}
    problem = assert_problem(ask(client, tenant.headers("viewer"), **body), 422)
    assert code in {error["code"] for error in problem["errors"]}
    assert client.get(BASE, headers=tenant.headers()).get_json()["items"] == []
    assert audit_events(client, tenant, "identity.access_request.created") == []


def test_missing_reason_and_unknown_scope(client: FlaskClient, tenant: Tenant) -> None:
    viewer = tenant.headers("viewer")
    response = client.post(BASE, json={"role": "viewer", "duration_minutes": 5}, headers=viewer)
    assert_problem(response, 422)
    assert_problem(ask(client, viewer, site_id="sit_00000000000000000000000000"), 404)
    assert_problem(ask(client, viewer, asset_id="ast_00000000000000000000000000"), 404)
    assert_problem(client.get(f"{BASE}/acr_00000000000000000000000000", headers=viewer), 404)
    assert_problem(client.get(BASE, query_string={"limit": 0}, headers=viewer), 400)

"""Grants through the HTTP API: the subset rule, revocation and early end, custom roles.

Every refusal is checked for its stable violation codes and for writing nothing: no
grant row and no ``identity.grant.created`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet import Fleet, build_fleet, patch
from outpost.clock import utcnow
from outpost.db import Database
from outpost.errors import Conflict, Forbidden
from outpost.identity import custom_roles, members
from outpost.identity.principal import Actor
from support.grants import (
    Member,
    add_member,
    audit_count,
    error_codes,
    give,
    given,
    grant_count,
    user_id_of,
)
from support.mfa import user_actor
from support.tenants import Tenant
from support.web import log_in

CREATED = "identity.grant.created"
#: A grant against the subset rule, or an invalid one, is a rule violation.
REFUSED = 422


@dataclass(frozen=True)
class World:
    a: Fleet
    b: Fleet
    viewer_id: str
    operator_id: str


@pytest.fixture
def world(client: FlaskClient, tenant: Tenant) -> World:
    return World(
        build_fleet(client, tenant.headers(), "A"),
        build_fleet(client, tenant.headers(), "B"),
        user_id_of(client, tenant.headers("viewer")),
        user_id_of(client, tenant.headers("operator")),
    )


def _site_a_operator(
    client: FlaskClient, db: Database, tenant: Tenant, world: World, name: str = "lead"
) -> Member:
    """A member with no role of their own and a standing operator assignment on site A."""
    lead = add_member(db, tenant, name, "none")
    given(give(client, tenant.headers(), lead.user_id, site_id=world.a.site["id"], hours=None))
    return lead


def _refused(response: Any, status: int, codes: list[str] | None = None) -> None:
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    if codes is not None:
        assert error_codes(response) == sorted(codes)


# --- the subset rule --------------------------------------------------------------------


def test_a_site_operator_grants_on_their_site_only(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    lead = _site_a_operator(client, db, tenant, world)
    before, events = grant_count(db), audit_count(db, CREATED)

    on_b = give(client, lead.headers, world.viewer_id, site_id=world.b.site["id"])
    on_b_asset = give(client, lead.headers, world.viewer_id, asset_id=world.b.gateway["id"])
    on_org = give(client, lead.headers, world.viewer_id)

    # site B is out of the grantor's sight: answered like a missing site, not 403
    _refused(on_b, 404)
    _refused(on_b_asset, 404)
    _refused(on_org, 403)
    assert "grant.create" in on_org.get_json()["detail"]
    assert (grant_count(db), audit_count(db, CREATED)) == (before, events)

    on_a = given(give(client, lead.headers, world.viewer_id, site_id=world.a.site["id"]))
    on_a_asset = given(
        give(client, lead.headers, world.viewer_id, "technician", asset_id=world.a.gateway["id"])
    )
    assert (on_a["site_id"], on_a["granted_by"]) == (world.a.site["id"], lead.user_id)
    assert on_a_asset["asset_id"] == world.a.gateway["id"]
    assert audit_count(db, CREATED) == events + 2


def test_granting_on_a_site_out_of_sight_looks_like_granting_on_none(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    """No oracle: a real site the grantor cannot see answers exactly like an unknown id."""
    lead = _site_a_operator(client, db, tenant, world)
    site_b = world.b.site["id"]
    assert client.get(f"/api/v1/sites/{site_b}", headers=lead.headers).status_code == 404
    unknown = give(client, lead.headers, world.viewer_id, site_id="sit_unknown")
    on_b = give(client, lead.headers, world.viewer_id, site_id=site_b)
    for response, name in ((unknown, "sit_unknown"), (on_b, site_b)):
        assert response.status_code == 404, response.get_json()
        body = response.get_json()
        assert (body["type"], body["detail"]) == (
            "urn:outpost:problem:not-found",
            f"No site {name}.",
        )
    on_b_asset = give(client, lead.headers, world.viewer_id, asset_id=world.b.gateway["id"])
    unknown_asset = give(client, lead.headers, world.viewer_id, asset_id="ast_unknown")
    assert on_b_asset.status_code == unknown_asset.status_code == 404
    assert "Plant B" not in on_b.get_data(as_text=True)


def test_an_operator_cannot_grant_admin_on_the_organization(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    before = grant_count(db)
    refused = give(client, tenant.headers("operator"), world.viewer_id, "admin")
    _refused(refused, REFUSED, ["grant.permission_not_held", "grant.permission_not_held"])
    missing = sorted(error["message"] for error in refused.get_json()["errors"])
    assert "member.manage" in missing[0] and "token.manage" in missing[1]
    assert {error["path"] for error in refused.get_json()["errors"]} == {"role"}
    assert grant_count(db) == before


def test_a_site_operator_cannot_give_what_they_lack_there(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    """A grantor holding only ``grant.create`` and ``site.read`` on site A gives nothing
    more, even on site A."""
    with db.unit_of_work() as session:
        custom_roles.create_role(
            session, tenant.admin_actor, name="delegator", permissions=["grant.create", "site.read"]
        )
    lead = add_member(db, tenant, "delegator", "none")
    given(
        give(
            client,
            tenant.headers(),
            lead.user_id,
            "delegator",
            site_id=world.a.site["id"],
            hours=None,
        )
    )
    before = grant_count(db)
    refused = give(client, lead.headers, world.viewer_id, "technician", site_id=world.a.site["id"])
    _refused(refused, REFUSED)
    not_held = [e["message"] for e in refused.get_json()["errors"]]
    assert set(error_codes(refused)) == {"grant.permission_not_held"}
    # technician on a site, less what a site holding or a grant never carries
    for permission in (
        "asset.read",
        "config.write",
        "files.read",
        "files.write",
        "remote.connect",
        "telemetry.read",
        "telemetry.write",
    ):
        assert any(permission in message for message in not_held), permission
    assert len(not_held) == 7
    assert grant_count(db) == before


def test_admin_on_a_site_gives_no_more_than_operator_there(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    """The subset rule compares permissions: "admin" on a site, less what only counts on the
    whole organization and what a grant never carries, is what an operator holds there. The
    holder gets no organization-wide power from the role's name."""
    holder = add_member(db, tenant, "holder", "none")
    given(
        give(
            client, tenant.headers("operator"), holder.user_id, "admin", site_id=world.a.site["id"]
        )
    )
    me = client.get("/api/v1/me", headers=holder.headers).get_json()
    assert "member.manage" not in me["permissions"]
    assert "grant.create" not in me["permissions"]
    assert client.get("/api/v1/audit", headers=holder.headers).status_code == 403
    assert client.get("/api/v1/tokens", headers=holder.headers).status_code == 200
    made = client.post("/api/v1/tokens", json={"name": "x"}, headers=holder.headers)
    assert made.status_code == 403
    assert (
        client.get(f"/api/v1/sites/{world.b.site['id']}", headers=holder.headers).status_code == 404
    )


def test_a_grant_lasts_at_most_the_organization_maximum(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    operator = tenant.headers("operator")
    site = world.a.site["id"]
    before = grant_count(db)
    given(
        give(client, operator, world.viewer_id, site_id=site, hours=168)
    )  # exactly the default 168 h (from the client's "now": a little less)
    refused = give(client, operator, world.viewer_id, site_id=site, hours=168.01)
    _refused(refused, REFUSED, ["grant.too_long"])
    assert "7 days" in refused.get_json()["errors"][0]["message"]
    start = utcnow() + timedelta(hours=1)
    from_later = give(client, operator, world.viewer_id, site_id=site, starts_at=start, hours=169)
    _refused(from_later, REFUSED, ["grant.too_long"])
    assert grant_count(db) == before + 1


def test_a_lower_organization_maximum_is_enforced(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    with db.unit_of_work() as session:
        members.set_max_grant_hours(session, tenant.admin_actor, 8)
    operator = tenant.headers("operator")
    given(give(client, operator, world.viewer_id, site_id=world.a.site["id"], hours=7.9))
    refused = give(client, operator, world.viewer_id, site_id=world.a.site["id"], hours=9)
    _refused(refused, REFUSED, ["grant.too_long"])
    assert "8 hours" in refused.get_json()["errors"][0]["message"]


def test_a_grant_cannot_outlive_the_grantors_own_temporary_access(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    """The grantor's ``grant.create`` on site A is standing (a custom role assigned without
    an end); what they give (technician) they hold only through a 2-hour grant."""
    with db.unit_of_work() as session:
        custom_roles.create_role(
            session, tenant.admin_actor, name="delegator", permissions=["grant.create", "site.read"]
        )
    site = world.a.site["id"]
    lead = add_member(db, tenant, "delegator", "none")
    given(give(client, tenant.headers(), lead.user_id, "delegator", site_id=site, hours=None))
    own = given(give(client, tenant.headers(), lead.user_id, "technician", site_id=site, hours=2))
    before = grant_count(db)

    refused = give(client, lead.headers, world.viewer_id, "technician", site_id=site, hours=3)
    _refused(refused, REFUSED, ["grant.outlives_grantor"])
    (violation,) = refused.get_json()["errors"]
    assert violation["path"] == "expires_at"
    assert own["expires_at"][:19] in violation["message"]
    assert grant_count(db) == before

    within = given(give(client, lead.headers, world.viewer_id, "technician", site_id=site, hours=1))
    assert within["granted_by"] == lead.user_id
    # the subtree of an asset on site A lies within site A: the same end applies there
    on_asset = give(
        client, lead.headers, world.viewer_id, "technician", asset_id=world.a.gateway["id"], hours=3
    )
    _refused(on_asset, REFUSED, ["grant.outlives_grantor"])


def test_only_a_member_manager_gives_a_role_without_an_end(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    before = grant_count(db)
    standing = give(
        client, tenant.headers("operator"), world.viewer_id, site_id=world.a.site["id"], hours=None
    )
    _refused(standing, 403)
    assert grant_count(db) == before
    made = given(
        give(client, tenant.headers(), world.viewer_id, site_id=world.a.site["id"], hours=None)
    )
    assert made["expires_at"] is None


Case = Callable[[World, Tenant, FlaskClient], dict[str, Any]]

INVALID: dict[str, tuple[Case, list[str]]] = {
    "self": (lambda w, t, c: {"user_id": w.operator_id}, ["grant.self"]),
    "unknown user": (lambda w, t, c: {"user_id": "usr_nobody"}, ["grant.user_unknown"]),
    "unknown role": (lambda w, t, c: {"role": "superuser"}, ["grant.role_unknown"]),
    "naive expiry": (
        lambda w, t, c: {"expires_at": (utcnow() + timedelta(hours=2)).isoformat()[:19]},
        ["grant.time_naive"],
    ),
    "naive start": (
        lambda w, t, c: {
            "starts_at": (utcnow() + timedelta(hours=1)).isoformat()[:19],
            "expires_at": utcnow() + timedelta(hours=2),
        },
        ["grant.time_naive"],
    ),
    "starts in the past": (
        lambda w, t, c: {
            "starts_at": utcnow() - timedelta(minutes=10),
            "expires_at": utcnow() + timedelta(hours=2),
        },
        ["grant.start_out_of_range"],
    ),
    "starts too far ahead": (
        lambda w, t, c: {"starts_at": utcnow() + timedelta(days=31), "hours": 2},
        ["grant.start_out_of_range"],
    ),
    "ends before it starts": (
        lambda w, t, c: {
            "starts_at": utcnow() + timedelta(hours=2),
            "expires_at": utcnow() + timedelta(hours=1),
        },
        ["grant.ends_before_start"],
    ),
    "already over": (
        lambda w, t, c: {"expires_at": utcnow() - timedelta(minutes=1)},
        ["grant.ends_before_start"],
    ),
    "site and asset": (
        lambda w, t, c: {"asset_id": w.a.gateway["id"]},
        ["grant.scope_twice"],
    ),
    "several at once": (
        lambda w, t, c: {"user_id": w.operator_id, "role": "superuser"},
        ["grant.role_unknown", "grant.self"],
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_grant_is_refused_with_its_codes_and_writes_nothing(
    client: FlaskClient, db: Database, tenant: Tenant, world: World, case: str
) -> None:
    build, codes = INVALID[case]
    body: dict[str, Any] = {"user_id": world.viewer_id, "site_id": world.a.site["id"]}
    body.update(build(world, tenant, client))
    before, events = grant_count(db), audit_count(db)
    refused = give(client, tenant.headers("operator"), **body)
    _refused(refused, REFUSED, codes)
    assert (grant_count(db), audit_count(db)) == (before, events)


def test_a_member_of_another_organization_cannot_be_given_access(
    client: FlaskClient, db: Database, tenant: Tenant, other_tenant: Tenant, world: World
) -> None:
    stranger = user_id_of(client, other_tenant.headers("viewer"))
    refused = give(client, tenant.headers("operator"), stranger, site_id=world.a.site["id"])
    _refused(refused, REFUSED, ["grant.user_unknown"])
    their_site = build_fleet(client, other_tenant.headers(), "X").site["id"]
    elsewhere = give(client, tenant.headers("operator"), world.viewer_id, site_id=their_site)
    _refused(elsewhere, 404)
    assert grant_count(db) == 0


@pytest.mark.parametrize("reason", [None, "", "   ", "x" * 501])
def test_a_grant_needs_a_reason(
    client: FlaskClient, db: Database, tenant: Tenant, world: World, reason: str | None
) -> None:
    refused = give(
        client,
        tenant.headers("operator"),
        world.viewer_id,
        site_id=world.a.site["id"],
        reason=reason,
    )
    _refused(refused, 422)
    assert {e["path"] for e in refused.get_json()["errors"]} == {"reason"}
    assert grant_count(db) == 0


def test_a_grant_holder_cannot_delegate_from_it(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    site = world.a.site["id"]
    given(give(client, tenant.headers("operator"), world.viewer_id, site_id=site, hours=4))
    viewer = tenant.headers("viewer")
    me = client.get("/api/v1/me", headers=viewer).get_json()
    assert "site.write" in me["permissions"] and "grant.create" not in me["permissions"]
    before = grant_count(db)
    third = add_member(db, tenant, "third", "none")
    again = give(client, viewer, third.user_id, "viewer", site_id=site, hours=1)
    _refused(again, 403)
    assert grant_count(db) == before


def test_a_member_with_only_a_grant_cannot_create_a_token(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = add_member(db, tenant, "holder", "none")
    given(give(client, tenant.headers("operator"), holder.user_id, "viewer", hours=4))
    me = client.get("/api/v1/me", headers=holder.headers).get_json()
    assert "site.read" in me["permissions"] and "token.create" not in me["permissions"]
    refused = client.post("/api/v1/tokens", json={"name": "mine"}, headers=holder.headers)
    assert refused.status_code == 403, refused.get_json()
    assert "token.create" in refused.get_json()["detail"]
    assert audit_count(db, "identity.token.created") == 3  # the tenant's own three


# --- revocation and early end -----------------------------------------------------------


def _revoke(client: FlaskClient, headers: dict[str, str], grant_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/grants/{grant_id}/revoke", json=body, headers=headers)


def _end(client: FlaskClient, headers: dict[str, str], grant_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/grants/{grant_id}/end", json=body, headers=headers)


def _holder_in_both(
    app: Flask, client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> tuple[Member, FlaskClient, dict[str, Any]]:
    """A member with no role, operator on site A for 4 h, with a token and a web session."""
    holder = add_member(db, tenant, "holder", "none")
    grant = given(
        give(client, tenant.headers("operator"), holder.user_id, site_id=world.a.site["id"])
    )
    browser = app.test_client()
    assert log_in(browser, holder.email).status_code in (302, 303)
    return holder, browser, grant


def _can_use_site_a(
    client: FlaskClient, browser: FlaskClient, holder: Member, world: World
) -> tuple[int, int, int]:
    site = world.a.site["id"]
    api = client.get(f"/api/v1/sites/{site}", headers=holder.headers).status_code
    write = patch(client, f"/api/v1/assets/{world.a.sensor['id']}", {"name": "t"}, holder.headers)
    page = browser.get(f"/sites/{site}").status_code
    return api, write.status_code if api == 200 else 404, page


def test_a_revocation_counts_from_the_next_request_for_tokens_and_sessions(
    app: Flask, client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder, browser, grant = _holder_in_both(app, client, db, tenant, world)
    assert _can_use_site_a(client, browser, holder, world) == (200, 200, 200)

    revoked = _revoke(client, tenant.headers("operator"), grant["id"], reason="Work done")
    assert revoked.status_code == 200, revoked.get_json()
    body = revoked.get_json()
    assert (body["active"], body["revoke_reason"], body["revoked_by"]) == (
        False,
        "Work done",
        world.operator_id,
    )

    site = world.a.site["id"]
    assert client.get(f"/api/v1/sites/{site}", headers=holder.headers).status_code == 404
    assert browser.get(f"/sites/{site}").status_code == 404
    assert (
        client.get(f"/api/v1/assets/{world.a.sensor['id']}", headers=holder.headers).status_code
        == 404
    )
    assert audit_count(db, "identity.grant.revoked") == 1


def test_ending_a_grant_early_counts_from_the_next_request(
    app: Flask, client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder, browser, grant = _holder_in_both(app, client, db, tenant, world)
    assert browser.get(f"/sites/{world.a.site['id']}").status_code == 200

    # only the holder ends it: not the grantor, not an admin, not another member
    assert _end(client, tenant.headers("operator"), grant["id"]).status_code == 403
    assert _end(client, tenant.headers(), grant["id"]).status_code == 403
    assert _end(client, tenant.headers("viewer"), grant["id"]).status_code == 404
    assert client.get(f"/api/v1/grants/{grant['id']}", headers=holder.headers).get_json()["active"]

    ended = _end(client, holder.headers, grant["id"], reason="Done early")
    assert ended.status_code == 200, ended.get_json()
    assert (ended.get_json()["active"], ended.get_json()["revoke_reason"]) == (False, "Done early")
    assert browser.get(f"/sites/{world.a.site['id']}").status_code == 404
    assert client.get("/api/v1/assets", headers=holder.headers).status_code == 403
    assert audit_count(db, "identity.grant.ended") == 1


def test_the_holder_ends_without_a_reason_but_revoking_needs_one(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    site = world.a.site["id"]
    first = given(give(client, tenant.headers("operator"), world.viewer_id, site_id=site))
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}):
        refused = _revoke(client, tenant.headers("operator"), first["id"], **body)
        assert refused.status_code == 422, (body, refused.get_json())
    events = audit_count(db)
    shown = client.get(f"/api/v1/grants/{first['id']}", headers=tenant.headers()).get_json()
    assert shown["active"] and shown["revoked_at"] is None
    assert audit_count(db) == events

    ended = _end(client, tenant.headers("viewer"), first["id"])
    assert ended.status_code == 200, ended.get_json()
    assert ended.get_json()["revoke_reason"] == "Ended early by its holder."


def test_ending_an_ended_grant_is_a_conflict(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    site = world.a.site["id"]
    operator, viewer = tenant.headers("operator"), tenant.headers("viewer")
    first = given(give(client, operator, world.viewer_id, site_id=site))
    assert _revoke(client, operator, first["id"], reason="Done").status_code == 200
    events = audit_count(db)
    assert _revoke(client, operator, first["id"], reason="Again").status_code == 409
    assert _revoke(client, tenant.headers(), first["id"], reason="Again").status_code == 409
    assert _end(client, viewer, first["id"]).status_code == 409

    second = given(give(client, operator, world.viewer_id, site_id=site))
    assert _end(client, viewer, second["id"]).status_code == 200
    assert _end(client, viewer, second["id"]).status_code == 409
    assert _revoke(client, operator, second["id"], reason="Again").status_code == 409
    shown = client.get(f"/api/v1/grants/{second['id']}", headers=viewer).get_json()
    assert shown["revoke_reason"] == "Ended early by its holder."
    assert audit_count(db) == events + 2  # the second grant's creation and end


def test_who_may_revoke(client: FlaskClient, db: Database, tenant: Tenant, world: World) -> None:
    """Whoever could have given it (``grant.create`` on its area) or a member manager; the
    holder ends it instead; others do not see it."""
    grant = given(
        give(client, tenant.headers("operator"), world.viewer_id, site_id=world.a.site["id"])
    )
    lead_b = add_member(db, tenant, "leadb", "none")
    given(give(client, tenant.headers(), lead_b.user_id, site_id=world.b.site["id"], hours=None))
    assert _revoke(client, tenant.headers("viewer"), grant["id"], reason="Mine").status_code == 403
    assert _revoke(client, lead_b.headers, grant["id"], reason="Not mine").status_code == 404
    lead_a = _site_a_operator(client, db, tenant, world, "leada")
    assert _revoke(client, lead_a.headers, grant["id"], reason="Mine to end").status_code == 200
    again = given(
        give(client, tenant.headers("operator"), world.viewer_id, site_id=world.a.site["id"])
    )
    assert _revoke(client, tenant.headers(), again["id"], reason="Admin").status_code == 200


def test_another_tenants_grant_is_not_found(
    client: FlaskClient, db: Database, tenant: Tenant, other_tenant: Tenant, world: World
) -> None:
    grant = given(
        give(client, tenant.headers("operator"), world.viewer_id, site_id=world.a.site["id"])
    )
    theirs = other_tenant.headers()
    assert client.get(f"/api/v1/grants/{grant['id']}", headers=theirs).status_code == 404
    assert _revoke(client, theirs, grant["id"], reason="Nope").status_code == 404
    assert _end(client, other_tenant.headers("viewer"), grant["id"]).status_code == 404
    assert client.get("/api/v1/grants", headers=theirs).get_json()["items"] == []


# --- custom roles -----------------------------------------------------------------------


def _operator_actor(db: Database, tenant: Tenant) -> Actor:
    return user_actor(db, "operator@acme-solar.test", tenant.org_id)


def test_custom_roles_need_member_manage(db: Database, tenant: Tenant) -> None:
    operator = _operator_actor(db, tenant)
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        custom_roles.create_role(session, operator, name="reader", permissions=["site.read"])
    with db.unit_of_work() as session:
        custom_roles.create_role(
            session, tenant.admin_actor, name="reader", permissions=["site.read"]
        )
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        custom_roles.update_role(session, operator, "reader", if_revision=1, permissions=[])
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        custom_roles.delete_role(session, operator, "reader", if_revision=1)
    with db.unit_of_work(write=False) as session:
        role = custom_roles.get_role(session, tenant.admin_actor.principal, "reader")
    assert (role.permissions, role.revision) == (["site.read"], 1)


def test_a_custom_role_in_use_cannot_be_deleted(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    with db.unit_of_work() as session:
        custom_roles.create_role(
            session, tenant.admin_actor, name="reader", permissions=["site.read", "asset.read"]
        )
    grant = given(
        give(
            client,
            tenant.headers("operator"),
            world.viewer_id,
            "reader",
            site_id=world.a.site["id"],
        )
    )
    with db.unit_of_work() as session, pytest.raises(Conflict) as refused:
        custom_roles.delete_role(session, tenant.admin_actor, "reader", if_revision=1)
    assert [v.code for v in refused.value.violations] == ["role.in_use"]
    assert "1 grants" in refused.value.detail
    with db.unit_of_work(write=False) as session:
        assert custom_roles.role_exists(session, tenant.org_id, "reader")

    revoked = _revoke(client, tenant.headers("operator"), grant["id"], reason="Done")
    assert revoked.status_code == 200
    with db.unit_of_work() as session:
        custom_roles.delete_role(session, tenant.admin_actor, "reader", if_revision=1)
    with db.unit_of_work(write=False) as session:
        assert not custom_roles.role_exists(session, tenant.org_id, "reader")


def test_a_custom_role_grant_gives_exactly_its_permissions_and_follows_changes(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    with db.unit_of_work() as session:
        custom_roles.create_role(
            session,
            tenant.admin_actor,
            name="fitter",
            permissions=["site.read", "asset.read", "config.write"],
        )
    holder = add_member(db, tenant, "fitter", "none")
    given(
        give(
            client, tenant.headers("operator"), holder.user_id, "fitter", site_id=world.a.site["id"]
        )
    )
    me = client.get("/api/v1/me", headers=holder.headers).get_json()
    assert me["permissions"] == ["asset.read", "config.write", "site.read"]

    sensor = f"/api/v1/assets/{world.a.sensor['id']}"
    config = {"config": {"sampling_interval_s": 60}}
    assert patch(client, sensor, config, holder.headers).status_code == 200
    assert patch(client, sensor, {"name": "renamed"}, holder.headers).status_code == 403
    site = f"/api/v1/sites/{world.a.site['id']}"
    assert patch(client, site, {"name": "Renamed"}, holder.headers).status_code == 403

    with db.unit_of_work() as session:
        custom_roles.update_role(
            session,
            tenant.admin_actor,
            "fitter",
            if_revision=1,
            permissions=["site.read", "asset.read", "asset.write"],
        )
    me = client.get("/api/v1/me", headers=holder.headers).get_json()
    assert me["permissions"] == ["asset.read", "asset.write", "site.read"]
    assert patch(client, sensor, {"name": "renamed"}, holder.headers).status_code == 200
    config = {"config": {"sampling_interval_s": 90}}
    assert patch(client, sensor, config, holder.headers).status_code == 403

    with db.unit_of_work() as session:
        custom_roles.update_role(
            session, tenant.admin_actor, "fitter", if_revision=2, permissions=[]
        )
    assert client.get(site, headers=holder.headers).status_code == 404
    assert client.get("/api/v1/sites", headers=holder.headers).status_code == 403

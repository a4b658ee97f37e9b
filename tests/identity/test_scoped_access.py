"""What a grant on a site or an asset subtree reaches, through the HTTP API and the pages:
reads and writes inside it, lists filtered to it, nothing outside it, nothing in another
organization, and nothing organization-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet import Fleet, build_fleet, patch
from outpost.db import Database
from outpost.identity import members
from support.files import PDF, created, put_file
from support.grants import Member, add_member, give, given, user_id_of
from support.tenants import Tenant
from support.web import log_in


@dataclass(frozen=True)
class World:
    a: Fleet
    b: Fleet


@pytest.fixture
def world(client: FlaskClient, tenant: Tenant) -> World:
    return World(
        build_fleet(client, tenant.headers(), "A"), build_fleet(client, tenant.headers(), "B")
    )


def _assets(fleet: Fleet) -> list[dict[str, Any]]:
    return [
        fleet.gateway,
        fleet.controller,
        fleet.sensor,
        fleet.meter,
        fleet.inverter,
        fleet.reader,
        fleet.badge,
    ]


def _ids(fleet: Fleet) -> set[str]:
    return {asset["id"] for asset in _assets(fleet)}


def _subtree(fleet: Fleet) -> set[str]:
    """The gateway and everything below it: every asset of the fleet but the badge."""
    return _ids(fleet) - {fleet.badge["id"]}


def _walk(
    client: FlaskClient, path: str, headers: dict[str, str], limit: int, **filters: str
) -> list[str]:
    """Every id of a list, page by page."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            query["cursor"] = cursor
        response = client.get(path, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        found += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def _status(client: FlaskClient, path: str, headers: dict[str, str]) -> int:
    return client.get(path, headers=headers).status_code


def _holder(
    client: FlaskClient,
    db: Database,
    tenant: Tenant,
    role: str = "operator",
    *,
    site_id: str | None = None,
    asset_id: str | None = None,
    name: str = "holder",
) -> Member:
    """A member with no role of their own and one grant, given by the tenant's operator."""
    member = add_member(db, tenant, name, "none")
    given(
        give(
            client,
            tenant.headers("operator"),
            member.user_id,
            role,
            site_id=site_id,
            asset_id=asset_id,
        )
    )
    return member


# --- a site ---------------------------------------------------------------------------


def test_a_viewer_given_operator_on_a_site_writes_there_only(
    client: FlaskClient, tenant: Tenant, world: World
) -> None:
    viewer = tenant.headers("viewer")
    viewer_id = user_id_of(client, viewer)
    site_a, site_b = (f"/api/v1/sites/{f.site['id']}" for f in (world.a, world.b))
    assert patch(client, site_a, {"name": "Renamed A"}, viewer).status_code == 403
    given(give(client, tenant.headers("operator"), viewer_id, site_id=world.a.site["id"]))

    assert patch(client, site_a, {"name": "Renamed A"}, viewer).status_code == 200
    for asset in (world.a.gateway, world.a.sensor, world.a.badge):
        renamed = patch(client, f"/api/v1/assets/{asset['id']}", {"name": "renamed"}, viewer)
        assert renamed.status_code == 200, renamed.get_json()
    # site B is visible to a viewer (their own role reads everything), so 403, not 404
    refused = patch(client, site_b, {"name": "Renamed B"}, viewer)
    assert refused.status_code == 403, refused.get_json()
    on_b = patch(client, f"/api/v1/assets/{world.b.sensor['id']}", {"name": "x"}, viewer)
    assert on_b.status_code == 403
    assert client.get(site_b, headers=tenant.headers()).get_json()["name"] == "Plant B"


def test_a_member_with_only_a_site_grant_sees_that_site_alone(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, site_id=world.a.site["id"])
    headers = holder.headers
    site_a, site_b = world.a.site["id"], world.b.site["id"]

    sites = client.get("/api/v1/sites", headers=headers).get_json()["items"]
    assert [(s["id"], s["asset_count"]) for s in sites] == [(site_a, 7)]
    assets = _walk(client, "/api/v1/assets", headers, limit=3)
    assert len(assets) == 7 and set(assets) == _ids(world.a)
    assert sorted(assets) == assets  # a stable order across pages
    assert _walk(client, "/api/v1/assets", headers, 50, site_id=site_b) == []
    assert _walk(client, "/api/v1/sites", headers, limit=1) == [site_a]

    assert _status(client, f"/api/v1/sites/{site_a}", headers) == 200
    assert _status(client, f"/api/v1/sites/{site_b}", headers) == 404
    for asset in _assets(world.b):
        assert _status(client, f"/api/v1/assets/{asset['id']}", headers) == 404
    # writes: inside site A, yes; site B is invisible, so 404, not 403
    assert patch(client, f"/api/v1/sites/{site_a}", {"name": "Renamed"}, headers).status_code == 200
    b_etag = client.get(f"/api/v1/sites/{site_b}", headers=tenant.headers()).headers["ETag"]
    refused = patch(client, f"/api/v1/sites/{site_b}", {"name": "Mine"}, headers, b_etag)
    assert refused.status_code == 404
    gateway_b = world.b.gateway["id"]
    b_gateway_etag = client.get(f"/api/v1/assets/{gateway_b}", headers=tenant.headers()).headers[
        "ETag"
    ]
    moved = patch(client, f"/api/v1/assets/{gateway_b}", {"name": "x"}, headers, b_gateway_etag)
    assert moved.status_code == 404
    # no site-wide writes: creating a site needs site.write on the organization
    new_site = client.post("/api/v1/sites", json={"name": "Plant C", "code": "C"}, headers=headers)
    assert new_site.status_code == 403


def test_a_grant_cannot_move_an_asset_out_of_its_site(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, site_id=world.a.site["id"])
    path = f"/api/v1/assets/{world.a.badge['id']}"
    moved = patch(client, path, {"site_id": world.b.site["id"]}, holder.headers)
    assert moved.status_code in (403, 404, 422), moved.get_json()
    shown = client.get(path, headers=tenant.headers()).get_json()
    assert shown["site_id"] == world.a.site["id"]


# --- an asset subtree -----------------------------------------------------------------


def test_a_subtree_grant_reaches_the_subtree_and_shows_its_site_only(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, asset_id=world.a.gateway["id"])
    headers = holder.headers

    assets = _walk(client, "/api/v1/assets", headers, limit=2)
    assert set(assets) == _subtree(world.a) and len(assets) == 6
    for asset_id in _subtree(world.a):
        assert _status(client, f"/api/v1/assets/{asset_id}", headers) == 200
    assert _status(client, f"/api/v1/assets/{world.a.badge['id']}", headers) == 404
    for asset in _assets(world.b):
        assert _status(client, f"/api/v1/assets/{asset['id']}", headers) == 404

    sites = client.get("/api/v1/sites", headers=headers).get_json()["items"]
    assert [(s["id"], s["asset_count"]) for s in sites] == [(world.a.site["id"], 6)]
    assert _status(client, f"/api/v1/sites/{world.a.site['id']}", headers) == 200
    assert _status(client, f"/api/v1/sites/{world.b.site['id']}", headers) == 404

    for asset in (world.a.gateway, world.a.controller, world.a.sensor):
        renamed = patch(client, f"/api/v1/assets/{asset['id']}", {"name": "mine"}, headers)
        assert renamed.status_code == 200, renamed.get_json()
    badge = f"/api/v1/assets/{world.a.badge['id']}"
    etag = client.get(badge, headers=tenant.headers()).headers["ETag"]
    assert patch(client, badge, {"name": "mine"}, headers, etag).status_code == 404
    site = f"/api/v1/sites/{world.a.site['id']}"
    assert patch(client, site, {"name": "Mine"}, headers).status_code == 403


def test_a_subtree_grant_cannot_take_an_asset_out_of_the_subtree(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, asset_id=world.a.controller["id"])
    path = f"/api/v1/assets/{world.a.sensor['id']}"
    moved = patch(client, path, {"parent_id": world.a.gateway["id"]}, holder.headers)
    # the new parent is out of the holder's sight: refused like a missing one, or forbidden
    assert moved.status_code in (403, 404), moved.get_json()
    shown = client.get(path, headers=tenant.headers()).get_json()
    assert shown["parent_id"] == world.a.controller["id"]


def _sensor(site_id: str, parent_id: str | None, serial: str) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "parent_id": parent_id,
        "type": "sensor",
        "name": serial,
        "serial": serial,
        "config": {"channel": 2, "kind": "temperature", "unit": "degC", "sampling_interval_s": 30},
    }


def test_a_subtree_holder_creates_assets_inside_the_subtree_only(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, asset_id=world.a.gateway["id"])
    site = world.a.site["id"]
    inside = client.post(
        "/api/v1/assets", json=_sensor(site, world.a.controller["id"], "in"), headers=holder.headers
    )
    assert inside.status_code == 201, inside.get_json()
    at_top = client.post("/api/v1/assets", json=_sensor(site, None, "top"), headers=holder.headers)
    assert at_top.status_code in (403, 404), at_top.get_json()
    on_b = client.post(
        "/api/v1/assets",
        json=_sensor(world.b.site["id"], world.b.controller["id"], "b"),
        headers=holder.headers,
    )
    assert on_b.status_code == 404, on_b.get_json()
    names = {
        a["name"]
        for a in client.get("/api/v1/assets", headers=tenant.headers()).get_json()["items"]
    }
    assert "in" in names and not names & {"top", "b"}


def test_a_changeset_reaching_outside_the_grant_is_refused_whole(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, site_id=world.a.site["id"])
    body = {
        "operations": [
            {"op": "update", "id": world.a.sensor["id"], "patch": {"name": "a-renamed"}},
            {"op": "update", "id": world.b.sensor["id"], "patch": {"name": "b-renamed"}},
        ]
    }
    for dry_run in ("true", "false"):
        refused = client.post(
            f"/api/v1/changesets?dry_run={dry_run}", json=body, headers=holder.headers
        )
        assert refused.status_code in (403, 404, 422), refused.get_json()
        assert "b-renamed" not in str(refused.get_json())
    for fleet in (world.a, world.b):
        shown = client.get(f"/api/v1/assets/{fleet.sensor['id']}", headers=tenant.headers())
        assert shown.get_json()["name"] == "temp"
    body["operations"] = body["operations"][:1]
    applied = client.post("/api/v1/changesets", json=body, headers=holder.headers)
    assert applied.status_code == 200, applied.get_json()
    assert applied.get_json()["applied"] is True


def test_the_grants_list_shows_what_its_reader_could_have_given(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    """A site lead sees the grants inside their site (on it or on its assets), not those
    elsewhere; a holder sees their own; a member manager sees all."""
    lead = add_member(db, tenant, "lead", "none")
    given(give(client, tenant.headers(), lead.user_id, site_id=world.a.site["id"], hours=None))
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    operator = tenant.headers("operator")
    on_a = given(give(client, operator, viewer_id, site_id=world.a.site["id"]))["id"]
    on_a_asset = given(give(client, operator, viewer_id, asset_id=world.a.sensor["id"]))["id"]
    on_b = given(give(client, operator, viewer_id, site_id=world.b.site["id"]))["id"]
    on_b_asset = given(give(client, operator, viewer_id, asset_id=world.b.sensor["id"]))["id"]
    org_wide = given(give(client, operator, viewer_id, "viewer"))["id"]

    def listed(headers: dict[str, str], **filters: str) -> set[str]:
        return set(_walk(client, "/api/v1/grants", headers, 2, **filters))

    lead_grants = listed(lead.headers)
    assert on_a in lead_grants and on_a_asset in lead_grants
    assert not lead_grants & {on_b, on_b_asset, org_wide}
    assert listed(lead.headers, site_id=world.b.site["id"]) == set()
    for hidden in (on_b, on_b_asset, org_wide):
        assert _status(client, f"/api/v1/grants/{hidden}", lead.headers) == 404
    mine = {on_a, on_a_asset, on_b, on_b_asset, org_wide}
    assert listed(tenant.headers("viewer")) == mine
    assert listed(tenant.headers()) >= mine
    assert listed(tenant.headers(), site_id=world.b.site["id"]) == {on_b, on_b_asset}


def test_the_site_page_of_a_subtree_holder_shows_the_subtree_only(
    app: Flask, client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    holder = _holder(client, db, tenant, asset_id=world.a.gateway["id"])
    browser = app.test_client()
    log_in(browser, holder.email)
    page = browser.get(f"/sites/{world.a.site['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert world.a.sensor["id"] in html
    assert world.a.badge["id"] not in html
    assert browser.get(f"/sites/{world.b.site['id']}").status_code == 404
    assert browser.get(f"/assets/{world.a.badge['id']}").status_code == 404
    assert browser.get(f"/assets/{world.b.sensor['id']}").status_code == 404


@pytest.mark.parametrize("area", ["site", "subtree"])
def test_a_scoped_holder_opens_the_pages_of_assets_in_reach(
    app: Flask, client: FlaskClient, db: Database, tenant: Tenant, world: World, area: str
) -> None:
    where = (
        {"site_id": world.a.site["id"]} if area == "site" else {"asset_id": world.a.gateway["id"]}
    )
    holder = _holder(client, db, tenant, **where)
    assert _status(client, f"/api/v1/assets/{world.a.sensor['id']}", holder.headers) == 200
    browser = app.test_client()
    log_in(browser, holder.email)
    page = browser.get(f"/assets/{world.a.sensor['id']}")
    assert page.status_code == 200


# --- files, audit, another organization -----------------------------------------------


def test_files_follow_the_grant(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    admin = tenant.headers()
    on_a = created(put_file(client, admin, PDF, name="a.pdf", site_id=world.a.site["id"]))
    on_b = created(put_file(client, admin, PDF, name="b.pdf", site_id=world.b.site["id"]))
    on_b_asset = created(
        put_file(client, admin, PDF, name="gw.pdf", asset_id=world.b.gateway["id"])
    )
    on_org = created(put_file(client, admin, PDF, name="org.pdf"))
    holder = _holder(client, db, tenant, site_id=world.a.site["id"])
    headers = holder.headers

    assert _status(client, f"/api/v1/files/{on_a['id']}", headers) == 200
    assert _status(client, f"/api/v1/files/{on_a['id']}/content", headers) == 200
    for hidden in (on_b, on_b_asset, on_org):
        assert _status(client, f"/api/v1/files/{hidden['id']}", headers) == 404
        assert _status(client, f"/api/v1/files/{hidden['id']}/content", headers) == 404
    listed = client.get("/api/v1/files", headers=headers).get_json()["items"]
    assert [f["id"] for f in listed] == [on_a["id"]]
    by_site = client.get(f"/api/v1/files?site_id={world.b.site['id']}", headers=headers)
    assert by_site.status_code == 404
    upload = put_file(client, headers, PDF, name="mine.pdf", site_id=world.b.site["id"])
    assert upload.status_code == 404
    assert created(put_file(client, headers, PDF, name="mine.pdf", site_id=world.a.site["id"]))


@pytest.mark.parametrize("area", ["site", "subtree"])
def test_audit_reading_is_organization_only(
    client: FlaskClient, db: Database, tenant: Tenant, world: World, area: str
) -> None:
    """``audit.read`` (in the viewer role) held on part of the organization counts for
    nothing."""
    where = (
        {"site_id": world.a.site["id"]} if area == "site" else {"asset_id": world.a.gateway["id"]}
    )
    holder = _holder(client, db, tenant, "viewer", **where)
    assert (
        "audit.read"
        not in client.get("/api/v1/me", headers=holder.headers).get_json()["permissions"]
    )
    assert _status(client, "/api/v1/audit", holder.headers) == 403
    assert _status(client, "/api/v1/audit/export", holder.headers) == 403
    assert _status(client, "/api/v1/audit", tenant.headers("viewer")) == 200


def test_another_organizations_objects_stay_not_found(
    client: FlaskClient, db: Database, tenant: Tenant, other_tenant: Tenant, world: World
) -> None:
    theirs = build_fleet(client, other_tenant.headers(), "A")
    their_file = created(
        put_file(client, other_tenant.headers(), PDF, name="x.pdf", site_id=theirs.site["id"])
    )
    holder = _holder(client, db, tenant, site_id=world.a.site["id"])
    headers = holder.headers
    assert _status(client, f"/api/v1/sites/{theirs.site['id']}", headers) == 404
    for asset in _assets(theirs):
        assert _status(client, f"/api/v1/assets/{asset['id']}", headers) == 404
    assert _status(client, f"/api/v1/files/{their_file['id']}", headers) == 404
    assert _walk(client, "/api/v1/assets", headers, 50, site_id=theirs.site["id"]) == []
    listed = client.get("/api/v1/sites", headers=headers).get_json()["items"]
    assert [s["id"] for s in listed] == [world.a.site["id"]]
    # and the tenant's own admin fares no better
    assert _status(client, f"/api/v1/sites/{theirs.site['id']}", tenant.headers()) == 404


# --- a change of standing role ---------------------------------------------------------


def test_a_role_downgrade_counts_from_the_next_request(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    operator = tenant.headers("operator")
    operator_id = user_id_of(client, operator)
    site = f"/api/v1/sites/{world.a.site['id']}"
    assert patch(client, site, {"name": "First"}, operator).status_code == 200

    with db.unit_of_work() as session:
        members.set_member_role(session, tenant.admin_actor, operator_id, "viewer")
    assert patch(client, site, {"name": "Second"}, operator).status_code == 403
    assert client.get("/api/v1/me", headers=operator).get_json()["role"] == "viewer"
    assert _status(client, site, operator) == 200

    with db.unit_of_work() as session:
        members.set_member_role(session, tenant.admin_actor, operator_id, "none")
    assert _status(client, site, operator) == 404
    assert _status(client, "/api/v1/sites", operator) == 403
    # a grant still works for a member whose role was taken away
    given(give(client, tenant.headers(), operator_id, site_id=world.a.site["id"]))
    assert patch(client, site, {"name": "Third"}, operator).status_code == 200

"""Inventory API behaviour: rules from both sides, ETags, deletes, change sets, lists."""

from __future__ import annotations

from fleet import build_fleet, codes, patch


def test_asset_representation_and_etag(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    r = client.get(f"/api/v1/assets/{fleet.sensor['id']}", headers=tenant.headers("viewer"))
    assert r.status_code == 200
    body = r.get_json()
    assert body["revision"] == 1 and r.headers["ETag"] == '"1"'
    assert body["parent_id"] == fleet.controller["id"] and body["site_id"] == fleet.site["id"]
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")


def test_patch_merges_config_and_bumps_revision(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    path = f"/api/v1/assets/{fleet.sensor['id']}"
    r = patch(client, path, {"config": {"sampling_interval_s": 10}}, tenant.headers("operator"))
    assert r.status_code == 200, r.get_json()
    assert r.headers["ETag"] == '"2"'
    assert r.get_json()["config"] == {
        "channel": 0,
        "kind": "temperature",
        "unit": "degC",
        "sampling_interval_s": 10,
    }


def test_every_violation_is_listed(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    r = client.post(
        "/api/v1/assets",
        headers=tenant.headers(),
        json={
            "site_id": fleet.site["id"],
            "parent_id": fleet.controller["id"],
            "type": "sensor",
            "name": "bad",
            "serial": "BAD-1",
            "config": {
                "channel": 0,
                "kind": "temperature",
                "unit": "degC",
                "sampling_interval_s": 600,
            },
        },
    )
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    found = {(e["code"], e["path"]) for e in r.get_json()["errors"]}
    assert ("channel.taken", "config.channel") in found
    assert ("sensor.sampling_exceeds_upload", "config.sampling_interval_s") in found
    taken = [e for e in r.get_json()["errors"] if e["code"] == "channel.taken"]
    assert any(fleet.sensor["id"] in (e["object_id"], *e["related"]) for e in taken)
    assert (
        client.get(f"/api/v1/assets?site_id={fleet.site['id']}", headers=tenant.headers())
        .get_json()["items"]
        .__len__()
        == 7
    )


def test_rules_hold_from_both_sides(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    h = tenant.headers()
    cases = [
        (
            f"/api/v1/assets/{fleet.gateway['id']}",
            {"config": {"upload_interval_s": 10}},
            "sensor.sampling_exceeds_upload",
        ),
        (
            f"/api/v1/assets/{fleet.controller['id']}",
            {"config": {"channels": 1}},
            "channel.out_of_range",
        ),
        (
            f"/api/v1/assets/{fleet.gateway['id']}",
            {"config": {"max_controllers": 0}},
            "gateway.controllers_exceeded",
        ),
        (
            f"/api/v1/assets/{fleet.gateway['id']}",
            {"config": {"max_bus_devices": 1}},
            "gateway.bus_devices_exceeded",
        ),
        (
            f"/api/v1/assets/{fleet.reader['id']}",
            {"config": {"zone": "roof"}},
            "badge.zone_unknown",
        ),
        (
            f"/api/v1/sites/{fleet.site['id']}",
            {"grid_connection_kw": 50},
            "site.grid_capacity_exceeded",
        ),
        (
            f"/api/v1/assets/{fleet.gateway['id']}",
            {"config": {"subnet": "10.9.0.0/24", "ip": "10.9.0.1"}},
            "ip.outside_subnet",
        ),
    ]
    for path, body, code in cases:
        r = patch(client, path, body, h)
        assert r.status_code == 422, (path, body, r.get_json())
        assert code in codes(r), (code, r.get_json())
        assert client.get(path, headers=h).headers["ETag"] == '"1"'


def test_stale_and_missing_if_match(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    path = f"/api/v1/assets/{fleet.meter['id']}"
    h = tenant.headers()
    assert client.patch(path, json={"name": "x"}, headers=h).status_code == 428
    assert patch(client, path, {"name": "first"}, h, '"1"').status_code == 200
    r = patch(client, path, {"name": "second"}, h, '"1"')
    assert r.status_code == 412
    assert r.headers["ETag"] == '"2"'
    assert r.get_json()["current"]["name"] == "first"


def test_put_replaces_config_whole(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    path = f"/api/v1/assets/{fleet.controller['id']}"
    body = {
        "site_id": fleet.site["id"],
        "parent_id": fleet.gateway["id"],
        "name": "ctl",
        "serial": "P1-ctl",
        "config": {"channels": 8},
        "tags": ["x"],
    }
    r = client.put(path, json=body, headers={**tenant.headers(), "If-Match": '"1"'})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["config"] == {"channels": 8}
    body["type"] = "gateway"
    r = client.put(path, json=body, headers={**tenant.headers(), "If-Match": '"2"'})
    assert r.status_code == 422 and "asset.type_immutable" in codes(r)


def test_delete_with_children_is_409_then_cascade(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    path = f"/api/v1/assets/{fleet.controller['id']}"
    h = {**tenant.headers(), "If-Match": '"1"'}
    r = client.delete(path, headers=h)
    assert r.status_code == 409
    related = r.get_json()["errors"][0]["related"]
    assert set(related) == {fleet.sensor["id"], fleet.reader["id"]}
    r = client.delete(path + "?cascade=true", headers=h)
    assert r.status_code == 422 and "badge.zone_unknown" in codes(
        r
    )  # the badge needs the reader's zone
    r = client.delete(f"/api/v1/assets/{fleet.badge['id']}", headers=h)
    assert r.status_code == 204
    assert client.delete(path + "?cascade=true", headers=h).status_code == 204
    for gone in (fleet.controller, fleet.sensor, fleet.reader):
        assert client.get(f"/api/v1/assets/{gone['id']}", headers=h).status_code == 404
    events = client.get("/api/v1/audit?action=inventory.asset.deleted", headers=h).get_json()
    assert {e["object_id"] for e in events["items"]} == {
        fleet.badge["id"],
        fleet.controller["id"],
        fleet.sensor["id"],
        fleet.reader["id"],
    }


def test_move_asset_to_another_site_moves_its_subtree(client, tenant):
    h = tenant.headers()
    a = build_fleet(client, h, "A")
    b = build_fleet(client, h, "B")
    r = client.post(
        "/api/v1/changesets",
        headers=h,
        json={
            "operations": [
                {
                    "op": "move",
                    "id": a.controller["id"],
                    "parent_id": b.gateway["id"],
                    "site_id": b.site["id"],
                },
            ]
        },
    )
    assert r.status_code == 422
    assert {"modbus.address_taken"} <= codes(r) or {"ip.duplicate"} <= codes(r) or codes(r)
    r = client.post(
        "/api/v1/changesets?dry_run=true",
        headers=h,
        json={
            "operations": [
                {
                    "op": "move",
                    "id": a.sensor["id"],
                    "parent_id": b.controller["id"],
                    "site_id": b.site["id"],
                },
            ]
        },
    )
    assert r.status_code == 200
    plan = r.get_json()
    assert plan["valid"] is False and "channel.taken" in {v["code"] for v in plan["violations"]}


def test_changeset_valid_only_at_the_end(client, tenant):
    """Swapping two meters' Modbus addresses breaks the rule mid-way but not at the end."""
    fleet = build_fleet(client, tenant.headers())
    ops = {
        "operations": [
            {"op": "update", "id": fleet.meter["id"], "patch": {"config": {"modbus_address": 2}}},
            {
                "op": "update",
                "id": fleet.inverter["id"],
                "patch": {"config": {"modbus_address": 1}},
            },
        ]
    }
    plan = client.post("/api/v1/changesets?dry_run=true", json=ops, headers=tenant.headers())
    assert plan.status_code == 200
    body = plan.get_json()
    assert body["valid"] is True and body["applied"] is False
    assert body["summary"] == {"create": 0, "update": 2, "move": 0, "delete": 0}
    diff = next(c for c in body["changes"] if c["asset_id"] == fleet.meter["id"])
    assert (
        diff["before"]["config"]["modbus_address"] == 1
        and diff["after"]["config"]["modbus_address"] == 2
    )
    meter = client.get(f"/api/v1/assets/{fleet.meter['id']}", headers=tenant.headers()).get_json()
    assert meter["config"]["modbus_address"] == 1  # dry run wrote nothing
    applied = client.post("/api/v1/changesets", json=ops, headers=tenant.headers())
    assert applied.status_code == 200 and applied.get_json()["applied"] is True
    meter = client.get(f"/api/v1/assets/{fleet.meter['id']}", headers=tenant.headers()).get_json()
    assert meter["config"]["modbus_address"] == 2 and meter["revision"] == 2


def test_changeset_creates_a_tree_with_refs_and_reports_op_paths(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    site = fleet.site["id"]
    ops = [
        {
            "op": "create",
            "ref": "g",
            "site_id": site,
            "type": "gateway",
            "name": "gw2",
            "serial": "GW2",
            "config": {
                "ip": "10.0.0.50",
                "subnet": "10.0.0.0/24",
                "upload_interval_s": 30,
                "max_controllers": 1,
                "max_bus_devices": 1,
            },
        },
        {
            "op": "create",
            "site_id": site,
            "parent_ref": "g",
            "type": "meter",
            "name": "m2",
            "serial": "M2",
            "config": {"modbus_address": 9, "ct_ratio": 5, "phases": 1},
        },
        {
            "op": "create",
            "site_id": site,
            "parent_ref": "g",
            "type": "meter",
            "name": "m3",
            "serial": "M3",
            "config": {"modbus_address": 9, "ct_ratio": 5, "phases": 1},
        },
    ]
    r = client.post("/api/v1/changesets", json={"operations": ops}, headers=tenant.headers())
    assert r.status_code == 422
    paths = {(e["code"], e["path"]) for e in r.get_json()["errors"]}
    assert ("modbus.address_taken", "operations[2].config.modbus_address") in paths
    ops[2]["config"]["modbus_address"] = 10
    r = client.post("/api/v1/changesets", json={"operations": ops}, headers=tenant.headers())
    assert r.status_code == 422 and "gateway.bus_devices_exceeded" in codes(r)
    ops.pop()
    r = client.post("/api/v1/changesets", json={"operations": ops}, headers=tenant.headers())
    assert r.status_code == 200 and r.get_json()["summary"]["create"] == 2


def test_serial_unique_per_organization_not_across(client, tenant, other_tenant):
    a = build_fleet(client, tenant.headers(), "A")
    build_fleet(client, other_tenant.headers(), "A")  # same serials, other tenant: fine
    site_b = client.post(
        "/api/v1/sites", json={"name": "B", "code": "B"}, headers=tenant.headers()
    ).get_json()
    r = client.post(
        "/api/v1/assets",
        headers=tenant.headers(),
        json={
            "site_id": site_b["id"],
            "type": "badge",
            "name": "dup",
            "serial": a.badge["serial"],
            "config": {"holder": "X", "zones": []},
        },
    )
    assert r.status_code == 422 and "asset.serial_taken" in codes(r)


def test_site_code_unique(client, tenant):
    h = tenant.headers()
    assert (
        client.post("/api/v1/sites", json={"name": "A", "code": "X1"}, headers=h).status_code == 201
    )
    r = client.post("/api/v1/sites", json={"name": "B", "code": "X1"}, headers=h)
    assert r.status_code == 422 and "site.code_taken" in codes(r)


def test_lists_filter_paginate_and_isolate_tenants(client, tenant, other_tenant):
    fleet = build_fleet(client, tenant.headers(), "A")
    build_fleet(client, tenant.headers(), "B")
    build_fleet(client, other_tenant.headers(), "Z")
    h = tenant.headers("viewer")
    seen, cursor = [], None
    while True:
        url = "/api/v1/assets?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=h).get_json()
        seen.extend(a["id"] for a in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 14 and seen == sorted(seen)
    by_site = client.get(
        f"/api/v1/assets?site_id={fleet.site['id']}&type=sensor", headers=h
    ).get_json()
    assert [a["id"] for a in by_site["items"]] == [fleet.sensor["id"]]
    by_text = client.get("/api/v1/assets?q=A-ME", headers=h).get_json()
    assert [a["id"] for a in by_text["items"]] == [fleet.meter["id"]]
    sites = client.get("/api/v1/sites", headers=h).get_json()["items"]
    assert [(s["code"], s["asset_count"]) for s in sites] == [("A", 7), ("B", 7)]


def test_tag_filter(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    r = patch(
        client,
        f"/api/v1/assets/{fleet.inverter['id']}",
        {"tags": ["roof", "east"]},
        tenant.headers(),
    )
    assert r.status_code == 200
    items = client.get("/api/v1/assets?tag=roof", headers=tenant.headers()).get_json()["items"]
    assert [a["id"] for a in items] == [fleet.inverter["id"]]
    assert client.get("/api/v1/assets?tag=west", headers=tenant.headers()).get_json()["items"] == []


def test_viewer_cannot_write(client, tenant):
    fleet = build_fleet(client, tenant.headers())
    r = patch(
        client, f"/api/v1/assets/{fleet.meter['id']}", {"name": "x"}, tenant.headers("viewer")
    )
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    r = client.post(
        "/api/v1/changesets?dry_run=true",
        headers=tenant.headers("viewer"),
        json={"operations": [{"op": "delete", "id": fleet.badge["id"]}]},
    )
    assert r.status_code == 403


def test_other_tenant_objects_are_404(client, tenant, other_tenant):
    fleet = build_fleet(client, tenant.headers())
    h = other_tenant.headers()
    for path in (f"/api/v1/assets/{fleet.meter['id']}", f"/api/v1/sites/{fleet.site['id']}"):
        assert client.get(path, headers=h).status_code == 404
        assert (
            client.patch(path, json={"name": "x"}, headers={**h, "If-Match": '"1"'}).status_code
            == 404
        )
        assert client.delete(path, headers={**h, "If-Match": '"1"'}).status_code == 404
    r = client.post(
        "/api/v1/assets",
        headers=h,
        json={
            "site_id": fleet.site["id"],
            "type": "badge",
            "name": "x",
            "serial": "X",
            "config": {"holder": "x", "zones": []},
        },
    )
    assert r.status_code == 404


def test_asset_types_are_listed_with_schemas(client, tenant):
    items = client.get("/api/v1/asset-types", headers=tenant.headers("viewer")).get_json()["items"]
    keys = {t["key"] for t in items}
    assert {"gateway", "controller", "sensor", "meter", "inverter", "badge_reader", "badge"} <= keys
    gateway = next(t for t in items if t["key"] == "gateway")
    assert (
        gateway["parent_types"] == []
        and "upload_interval_s" in gateway["config_schema"]["properties"]
    )


def test_openapi_covers_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api_meta.openapi":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)
    assert client.get("/api/docs").status_code == 200


def test_patch_can_move_a_root_asset_to_another_site(client, tenant):
    h = tenant.headers()
    a = build_fleet(client, h, "A")
    b = build_fleet(client, h, "B")
    r = patch(client, f"/api/v1/assets/{a.badge['id']}", {"site_id": b.site["id"]}, h)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["site_id"] == b.site["id"]
    moved = client.get(f"/api/v1/audit?object_id={a.badge['id']}", headers=h).get_json()["items"][0]
    assert moved["action"] == "inventory.asset.moved"
    r = patch(client, f"/api/v1/assets/{a.gateway['id']}", {"site_id": b.site["id"]}, h)
    assert r.status_code == 422  # its subtree moves with it and collides on site B
    assert {"ip.duplicate", "site.grid_capacity_exceeded"} <= codes(r)


def test_operation_problems_point_at_their_own_operation(client, tenant):
    """Several operations on one asset: each problem names the operation that raised it."""
    fleet = build_fleet(client, tenant.headers())
    r = client.post(
        "/api/v1/changesets?dry_run=true",
        headers=tenant.headers(),
        json={
            "operations": [
                {"op": "update", "id": fleet.meter["id"], "patch": {"name": "x"}},
                {"op": "update", "id": fleet.meter["id"], "patch": {"revision": 3}},
                {"op": "update", "id": fleet.meter["id"], "if_revision": 9, "patch": {"name": "y"}},
                {"op": "update", "id": "ast_missing", "patch": {"name": "z"}},
            ]
        },
    )
    found = {(v["code"], v["path"]) for v in r.get_json()["violations"]}
    assert found == {
        ("patch.field_not_editable", "operations[1].patch"),
        ("asset.revision_stale", "operations[2].if_revision"),
        ("asset.not_found", "operations[3].id"),
    }

"""Inventory pages: fleet, site, asset (config form, history, delete) and change sets."""

from __future__ import annotations

import io
import json
import re

from support.web import build_small_fleet, post_form


def text(response) -> str:
    return response.get_data(as_text=True)


def revision_of(html: str) -> str:
    match = re.search(r'name="revision" value="(\d+)"', html)
    assert match is not None
    return match.group(1)


def asset_form(asset: dict, revision: int | str | None = None, **config: object) -> dict:
    """The asset form as a browser would post it: every shown field, config overridden."""
    values = {**asset["config"], **config}
    data = {
        "revision": str(revision if revision is not None else asset["revision"]),
        "name": asset["name"],
        "serial": asset["serial"],
        "tags": ", ".join(asset["tags"]),
    }
    for key, value in values.items():
        data[f"config.{key}"] = "" if value is None else str(value)
    return data


# --- fleet ------------------------------------------------------------------------------


def test_fleet_lists_sites_with_counts_and_total(admin, fleet, client, tenant):
    build_small_fleet(client, tenant.headers(), code="Q2")
    response = admin.get("/")
    assert response.status_code == 200
    html = text(response)
    assert "Plant P1" in html and "Plant Q2" in html
    assert "Europe/Paris" in html
    assert "6 assets in the organization" in html
    assert "admin@acme-solar.test" in html and "admin</span>" in html


def test_fleet_search_and_pagination(admin, client, tenant):
    for code in ("A1", "A2", "B1"):
        r = client.post(
            "/api/v1/sites", json={"name": f"Site {code}", "code": code}, headers=tenant.headers()
        )
        assert r.status_code == 201
    html = text(admin.get("/?q=A"))
    assert "Site A1" in html and "Site A2" in html and "Site B1" not in html
    html = text(admin.get("/?q=zzz"))
    assert "No site matches" in html


def test_fleet_paginates_with_cursor(admin, client, tenant, monkeypatch):
    for index in range(55):
        r = client.post(
            "/api/v1/sites",
            json={"name": f"Site {index:02d}", "code": f"S{index:02d}"},
            headers=tenant.headers(),
        )
        assert r.status_code == 201
    html = text(admin.get("/"))
    assert "Site 49" in html and "Site 50" not in html
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', html)
    assert cursor is not None
    html = text(admin.get(f"/?cursor={cursor.group(1)}"))
    assert "Site 50" in html and "Site 54" in html and "Site 49" not in html
    assert admin.get("/?cursor=garbage!").status_code == 400


# --- site -------------------------------------------------------------------------------


def test_site_page_shows_details_and_indented_tree(admin, fleet):
    response = admin.get(f"/sites/{fleet.site['id']}")
    assert response.status_code == 200
    html = text(response)
    assert "Plant P1" in html and "Europe/Paris" in html and "500 kW" in html
    assert 'class="depth-0"' in html and 'class="depth-1"' in html and 'class="depth-2"' in html
    assert "P1-GW1" in html and "10.0.0.1" in html
    assert f'href="/assets/{fleet.sensor["id"]}"' in html
    assert '<span class="k">channel</span>1' in html
    assert 'name="grid_connection_kw"' in html


def test_site_edit_saves_and_is_audited(admin, fleet):
    site = fleet.site
    response = post_form(
        admin,
        f"/sites/{site['id']}",
        {
            "revision": "1",
            "name": "Plant One",
            "timezone": "Europe/Berlin",
            "grid_connection_kw": "750",
            "address": "1 Sun Road",
            "reason": "re-rated",
        },
    )
    assert response.status_code == 303
    html = text(admin.get(response.headers["Location"]))
    assert "The site was saved." in html
    assert "Plant One" in html and "Europe/Berlin" in html and "750 kW" in html
    audit = text(admin.get(f"/audit?object_type=site&object_id={site['id']}"))
    assert "inventory.site.updated" in audit and "re-rated" in audit


def test_site_edit_errors_beside_fields(admin, fleet):
    response = post_form(
        admin,
        f"/sites/{fleet.site['id']}",
        {"revision": "1", "name": "", "timezone": "Mars/Olympus", "grid_connection_kw": "lots"},
    )
    assert response.status_code == 422
    html = text(response)
    assert re.search(r'id="timezone-error">[^<]*unknown time zone', html)
    assert re.search(r'id="grid_connection_kw-error">[^<]*valid number', html)
    assert re.search(r'id="name-error">', html)
    assert 'value="lots"' in html  # the operator's input is kept


def test_site_stale_revision_shows_current_values(admin, fleet, client, tenant):
    site = fleet.site
    r = client.patch(
        f"/api/v1/sites/{site['id']}",
        json={"name": "Renamed elsewhere"},
        headers=tenant.headers(**{"If-Match": '"1"'}),
    )
    assert r.status_code == 200
    response = post_form(
        admin,
        f"/sites/{site['id']}",
        {"revision": "1", "name": "Mine", "timezone": "UTC", "grid_connection_kw": "500"},
    )
    assert response.status_code == 409
    html = text(response)
    assert "Someone else changed this site" in html
    assert 'value="Renamed elsewhere"' in html
    assert revision_of(html) == "2"


# --- asset ------------------------------------------------------------------------------


def test_asset_page_renders_config_form_from_schema(admin, fleet):
    response = admin.get(f"/assets/{fleet.sensor['id']}")
    assert response.status_code == 200
    html = text(response)
    assert 'name="config.channel"' in html and 'name="config.sampling_interval_s"' in html
    assert '<select id="f-config-kind" name="config.kind"' in html
    assert '<option value="temperature" selected>' in html
    assert "P1 controller" in html  # the parent, linked in the breadcrumb
    assert "inventory.asset.created" in html  # history


def test_asset_config_error_beside_field_then_fix_and_history(admin, fleet):
    sensor = fleet.sensor
    response = post_form(admin, f"/assets/{sensor['id']}", asset_form(sensor, channel="abc"))
    assert response.status_code == 422
    html = text(response)
    assert re.search(r'id="config-channel-error">[^<]*not of type', html), html
    assert 'value="abc"' in html
    response = post_form(admin, f"/assets/{sensor['id']}", asset_form(sensor, channel="-1"))
    assert re.search(r'id="config-channel-error">[^<]*minimum', text(response))
    response = post_form(
        admin, f"/assets/{sensor['id']}", {**asset_form(sensor, channel="3"), "reason": "rewired"}
    )
    assert response.status_code == 303
    html = text(admin.get(response.headers["Location"]))
    assert "The asset was saved." in html
    assert "inventory.asset.updated" in html
    assert "<code>config.channel</code>: <del>1</del> → <ins>3</ins>" in html
    assert "rewired" in html


def test_asset_empty_optional_field_removes_it(admin, fleet):
    controller = fleet.controller
    response = post_form(admin, f"/assets/{controller['id']}", asset_form(controller, ip=""))
    assert response.status_code == 303
    html = text(admin.get(f"/assets/{controller['id']}"))
    assert "<code>config.ip</code>: <del>10.0.0.2</del> → <ins>—</ins>" in html


def test_asset_violation_from_the_other_side_is_beside_the_field_with_link(admin, fleet):
    """Lowering a gateway's upload interval is refused beside that field, naming the sensor."""
    gateway = fleet.gateway
    response = post_form(
        admin, f"/assets/{gateway['id']}", asset_form(gateway, upload_interval_s="10")
    )
    assert response.status_code == 422
    html = text(response)
    field_error = html[html.index('id="config-upload_interval_s-error"') :]
    field_error = field_error[: field_error.index("</span>")]
    assert "samples every 30 s, longer than the 10 s upload interval" in field_error
    assert f'href="/assets/{fleet.sensor["id"]}">P1 temperature</a>' in field_error


def test_asset_stale_revision(admin, fleet, client, tenant):
    sensor = fleet.sensor
    r = client.patch(
        f"/api/v1/assets/{sensor['id']}",
        json={"config": {"unit": "K"}},
        headers=tenant.headers(**{"If-Match": '"1"'}),
    )
    assert r.status_code == 200
    response = post_form(admin, f"/assets/{sensor['id']}", asset_form(sensor, channel="2"))
    assert response.status_code == 409
    html = text(response)
    assert "Someone else changed this asset" in html
    assert 'name="config.unit" type="text" value="K"' in html
    assert revision_of(html) == "2"


def test_asset_delete_reports_dependents_then_cascades(admin, fleet):
    controller = fleet.controller
    response = post_form(admin, f"/assets/{controller['id']}/delete", {"revision": "1"})
    assert response.status_code == 409
    html = text(response)
    assert "The asset was not deleted." in html
    assert f'href="/assets/{fleet.sensor["id"]}">P1 temperature</a>' in html
    response = post_form(
        admin, f"/assets/{controller['id']}/delete", {"revision": "1", "cascade": "yes"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/sites/{fleet.site['id']}")
    assert admin.get(f"/assets/{fleet.sensor['id']}").status_code == 404


def test_viewer_sees_no_forms_and_forced_post_is_403(viewer, fleet):
    html = text(viewer.get(f"/assets/{fleet.sensor['id']}"))
    assert "Save asset" not in html and "Delete" not in html
    html = text(viewer.get(f"/sites/{fleet.site['id']}"))
    assert "Save site" not in html
    response = post_form(
        viewer, f"/assets/{fleet.sensor['id']}", asset_form(fleet.sensor, channel="2")
    )
    assert response.status_code == 403
    assert "do not hold config.write" in text(response)
    response = post_form(
        viewer,
        f"/sites/{fleet.site['id']}",
        {"revision": "1", "name": "x", "timezone": "UTC", "grid_connection_kw": ""},
    )
    assert response.status_code == 403


def test_operator_can_edit(operator, fleet):
    response = post_form(
        operator, f"/assets/{fleet.sensor['id']}", asset_form(fleet.sensor, unit="K")
    )
    assert response.status_code == 303


def test_other_tenants_objects_are_404(admin, client, other_tenant):
    theirs = build_small_fleet(client, other_tenant.headers(), code="X9")
    assert admin.get(f"/sites/{theirs.site['id']}").status_code == 404
    assert admin.get(f"/assets/{theirs.sensor['id']}").status_code == 404
    response = post_form(admin, f"/assets/{theirs.sensor['id']}", asset_form(theirs.sensor))
    assert response.status_code == 404
    fleet_page = text(admin.get("/"))
    assert "Plant X9" not in fleet_page
    assert theirs.site["id"] not in fleet_page


def test_missing_revision_is_400(admin, fleet):
    response = post_form(admin, f"/assets/{fleet.sensor['id']}", {"name": "x"})
    assert response.status_code == 400


# --- change sets ------------------------------------------------------------------------


def test_changeset_plan_then_apply(admin, fleet):
    changeset = {
        "operations": [
            {
                "op": "update",
                "id": fleet.sensor["id"],
                "if_revision": 1,
                "patch": {"config": {"sampling_interval_s": 45}},
            },
            {
                "op": "create",
                "site_id": fleet.site["id"],
                "type": "sensor",
                "parent_id": fleet.controller["id"],
                "name": "P1 humidity",
                "serial": "P1-SN2",
                "config": {
                    "channel": 2,
                    "kind": "humidity",
                    "unit": "%",
                    "sampling_interval_s": 60,
                },
            },
        ]
    }
    body = json.dumps(changeset)
    response = post_form(admin, "/changesets/new", {"changeset": body, "action": "plan"})
    assert response.status_code == 200
    html = text(response)
    assert "Plan: valid" in html
    assert '<span class="n">1</span> create' in html and '<span class="n">1</span> update' in html
    assert "<code>config.sampling_interval_s</code>: <del>30</del> → <ins>45</ins>" in html
    assert "P1 humidity" in html
    assert "Apply change set" in html
    assert "P1-SN2" not in text(admin.get(f"/sites/{fleet.site['id']}"))  # nothing written
    response = post_form(
        admin, "/changesets/new", {"changeset": body, "action": "apply", "reason": "add humidity"}
    )
    assert response.status_code == 200
    assert "Applied" in text(response)
    assert "P1-SN2" in text(admin.get(f"/sites/{fleet.site['id']}"))
    assert "add humidity" in text(admin.get("/audit?action=inventory.asset.created"))


def test_changeset_plan_shows_violations_with_paths(admin, fleet):
    body = json.dumps(
        {
            "operations": [
                {"op": "update", "id": fleet.sensor["id"], "patch": {"config": {"channel": 99}}}
            ]
        }
    )
    response = post_form(admin, "/changesets/new", {"changeset": body, "action": "plan"})
    assert response.status_code == 200
    html = text(response)
    assert "Plan: refused" in html
    assert "operations[0].config.channel" in html
    assert "Apply change set" not in html
    response = post_form(admin, "/changesets/new", {"changeset": body, "action": "apply"})
    assert response.status_code == 422
    assert "operations[0].config.channel" in text(response)


def test_changeset_bad_json_and_bad_shape_are_shown(admin, fleet):
    response = post_form(admin, "/changesets/new", {"changeset": "{not json", "action": "plan"})
    assert response.status_code == 422
    assert "not valid JSON" in text(response)
    response = post_form(
        admin, "/changesets/new", {"changeset": '{"operations": [{"op": "explode"}]}'}
    )
    assert response.status_code == 422
    html = text(response)
    assert "does not have the expected shape" in html and "operations.0" in html
    response = post_form(admin, "/changesets/new", {"changeset": ""})
    assert response.status_code == 422


CSV = (
    "site_code,type,name,serial,parent_serial,tags,config\n"
    'P1,controller,Second controller,P1-CT2,P1-GW1,roof,"{""channels"": 4}"\n'
    'P1,sensor,Roof irradiance,P1-SN9,P1-CT2,,"{""channel"": 1, ""kind"": ""irradiance"", '
    '""unit"": ""W/m2"", ""sampling_interval_s"": 10}"\n'
)


def test_csv_plan_then_apply(admin, fleet):
    response = post_form(
        admin,
        "/changesets/new",
        {"csv": (io.BytesIO(CSV.encode()), "fleet.csv"), "action": "plan"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    html = text(response)
    assert "2 CSV rows, all valid" in html
    assert 'name="csv_text"' in html
    response = post_form(admin, "/changesets/new", {"csv_text": CSV, "action": "apply"})
    assert "Applied" in text(response)
    assert "Roof irradiance" in text(admin.get(f"/sites/{fleet.site['id']}"))


def test_csv_plan_reports_lines(admin, fleet):
    bad = CSV.replace('""channel"": 1', '""channel"": 77').replace("P1-GW1", "NOPE")
    response = post_form(
        admin,
        "/changesets/new",
        {"csv": (io.BytesIO(bad.encode()), "fleet.csv"), "action": "plan"},
        content_type="multipart/form-data",
    )
    html = text(response)
    assert "Plan: refused" in html
    assert "parent.missing" in html
    response = post_form(
        admin,
        "/changesets/new",
        {"csv": (io.BytesIO(b"a,b\n1,2\n"), "x.csv"), "action": "plan"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "lacks the columns" in text(response)


def test_viewer_changeset_apply_is_403(viewer, fleet):
    body = json.dumps({"operations": [{"op": "delete", "id": fleet.sensor["id"]}]})
    html = text(post_form(viewer, "/changesets/new", {"changeset": body, "action": "plan"}))
    assert "Apply change set" not in html
    response = post_form(viewer, "/changesets/new", {"changeset": body, "action": "apply"})
    assert response.status_code == 403


def test_asset_field_error_in_the_name_fields_links_the_other_asset(admin, fleet):
    controller = fleet.controller
    form = asset_form(controller)
    form["serial"] = fleet.sensor["serial"]
    response = post_form(admin, f"/assets/{controller['id']}", form)
    assert response.status_code == 422
    html = text(response)
    field_error = html[html.index('id="serial-error"') :]
    field_error = field_error[: field_error.index("</span>")]
    assert "already used" in field_error
    assert f'href="/assets/{fleet.sensor["id"]}"' in field_error

"""The audit log page: filters, pagination and export."""

from __future__ import annotations

import csv
import io
import json

from support.web import post_form


def test_audit_lists_events_with_changes(admin, fleet):
    response = admin.get("/audit")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "inventory.asset.created" in html and "identity.session.started" in html
    assert f'href="/assets/{fleet.sensor["id"]}"' in html


def test_audit_filters(admin, fleet):
    html = admin.get(f"/audit?object_type=asset&object_id={fleet.sensor['id']}").get_data(
        as_text=True
    )
    assert fleet.sensor["id"] in html
    assert fleet.gateway["id"] not in html
    html = admin.get("/audit?action=inventory.site.created").get_data(as_text=True)
    assert "inventory.site.created" in html and "inventory.asset.created" not in html
    html = admin.get("/audit?since=2999-01-01").get_data(as_text=True)
    assert "No events match" in html
    html = admin.get("/audit?until=2999-01-01T00:00").get_data(as_text=True)
    assert "inventory.site.created" in html


def test_audit_bad_filter_is_shown_not_500(admin, tenant):
    response = admin.get("/audit?since=yesterday")
    assert response.status_code == 400
    assert "since" in response.get_data(as_text=True)


def test_audit_paginates(admin, tenant):
    for index in range(3):
        post_form(admin, "/tokens", {"name": f"t{index}"})
    events = admin.get("/audit?action=identity.token.created").get_data(as_text=True)
    assert events.count("identity.token.created</code>") >= 6
    # 50 per page: make more than a page of events
    for index in range(50):
        post_form(admin, "/tokens", {"name": f"bulk{index}"})
    html = admin.get("/audit?action=identity.token.created").get_data(as_text=True)
    assert 'rel="next"' in html
    next_url = html.split('rel="next"')[0].rsplit('href="', 1)[1].rstrip('" ').replace("&amp;", "&")
    second = admin.get(next_url).get_data(as_text=True)
    assert second.count("identity.token.created</code>") == 53 + 3 - 50


def test_audit_csv_export_respects_filters(admin, fleet):
    response = admin.get("/audit/export?format=csv&object_type=asset")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="audit.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 3
    assert {row["object_type"] for row in rows} == {"asset"}


def test_audit_jsonl_export(admin, fleet):
    response = admin.get("/audit/export?format=jsonl&action=inventory.site.created")
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["action"] for line in lines] == ["inventory.site.created"]


def test_audit_export_needs_a_session(client, fleet):
    assert client.get("/audit/export?format=csv").status_code == 302


def test_audit_is_scoped_to_the_tenant(admin, client, other_tenant):
    r = client.post(
        "/api/v1/sites", json={"name": "Theirs", "code": "THEIRS"}, headers=other_tenant.headers()
    )
    site_id = r.get_json()["id"]
    assert site_id not in admin.get("/audit").get_data(as_text=True)
    assert site_id not in admin.get("/audit/export?format=csv").get_data(as_text=True)

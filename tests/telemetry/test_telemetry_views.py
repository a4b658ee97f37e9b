"""Telemetry pages: the asset page's chart card, the site dashboard, and the same-origin
JSON (and CSV) the pages fetch with the session cookie."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet import Fleet, build_fleet
from outpost.clock import utcnow
from outpost.db import Database
from outpost.telemetry.query_request import format_time, to_ns
from outpost.telemetry.store import NS_PER_SECOND, Point
from support.grants import add_member, give, given
from support.tenants import Tenant
from support.web import log_in

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class World:
    mine: Fleet
    far: Fleet
    foreign: Fleet
    base: datetime


@pytest.fixture
def world(app: Flask, client: FlaskClient, tenant: Tenant, other_tenant: Tenant) -> World:
    mine = build_fleet(client, tenant.headers(), "P1")
    far = build_fleet(client, tenant.headers(), "P2")
    foreign = build_fleet(client, other_tenant.headers(), "X1")
    base = utcnow().replace(minute=0, second=0, microsecond=0, tzinfo=UTC) - timedelta(hours=2)
    step = 30 * NS_PER_SECOND
    points = [
        Point(tenant.org_id, mine.inverter["id"], "ac_power_kw", to_ns(base) + k * step, 10.0 + k)
        for k in range(8)
    ]
    points.append(Point(tenant.org_id, mine.reader["id"], "access_granted", to_ns(base), 1.0))
    points.append(
        Point(other_tenant.org_id, foreign.inverter["id"], "ac_power_kw", to_ns(base), 7.0)
    )
    app.extensions["outpost"].telemetry.write(points)
    return World(mine, far, foreign, base)


def logged_in(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, f"{role}@acme-solar.test").status_code == 303
    return client


def no_inline_code(html: str) -> None:
    """CSP allows scripts and styles from files only."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " style=" not in html and "<style" not in html


def chart_params(html: str) -> dict[str, Any]:
    match = re.search(r'data-params="([^"]*)"', html)
    assert match is not None
    found: dict[str, Any] = json.loads(unescape(match.group(1)))
    return found


def test_the_asset_page_has_a_live_chart_of_its_metrics(
    app: Flask, tenant: Tenant, world: World
) -> None:
    viewer = logged_in(app, "viewer")
    html = viewer.get(f"/assets/{world.mine.inverter['id']}").get_data(as_text=True)
    assert 'id="telemetry"' in html and "data-telemetry-chart" in html
    assert chart_params(html) == {
        "asset": world.mine.inverter["id"],
        "metric": "ac_power_kw",
        "every": "5m",
        "aggregate": "mean",
    }
    options = re.findall(r'<option value="([a-z_]+)" data-aggregate="(\w+)"', html)
    assert options == [
        ("ac_power_kw", "mean"),
        ("energy_total_kwh", "mean"),
        ("dc_voltage_v", "mean"),
    ]
    assert 'data-timezone="Europe/Paris"' in html
    assert 'src="/static/telemetry.js"' in html and 'href="/static/telemetry.css"' in html
    assert "No telemetry yet" in html  # the empty state, shown by the script when there is no data
    assert "/telemetry/query?format=csv" in html
    no_inline_code(html)


def test_a_boolean_metric_charts_its_maximum(app: Flask, tenant: Tenant, world: World) -> None:
    html = logged_in(app, "viewer").get(f"/assets/{world.mine.reader['id']}").get_data(as_text=True)
    assert chart_params(html)["aggregate"] == "max"


def test_a_type_without_metrics_has_no_chart(app: Flask, tenant: Tenant, world: World) -> None:
    html = logged_in(app, "viewer").get(f"/assets/{world.mine.badge['id']}").get_data(as_text=True)
    assert "data-telemetry-chart" not in html


def test_the_site_page_links_the_dashboard(app: Flask, tenant: Tenant, world: World) -> None:
    site = world.mine.site["id"]
    html = logged_in(app, "viewer").get(f"/sites/{site}").get_data(as_text=True)
    assert f'href="/sites/{site}/telemetry"' in html


def test_the_site_dashboard_shows_the_latest_values(
    app: Flask, tenant: Tenant, world: World
) -> None:
    site = world.mine.site["id"]
    response = logged_in(app, "viewer").get(f"/sites/{site}/telemetry")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    local = (world.base + timedelta(minutes=3.5)).astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
    row = re.search(
        rf'<tr data-asset="{world.mine.inverter["id"]}" data-metric="ac_power_kw">(.*?)</tr>',
        html,
        re.S,
    )
    assert row is not None
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells == ["inv", "ac_power_kw", "17", "kW", local]
    reader = re.search(
        rf'data-asset="{world.mine.reader["id"]}" data-metric="access_granted">(.*?)</tr>',
        html,
        re.S,
    )
    assert reader is not None and ">yes<" in reader.group(1)
    params = chart_params(html)
    assert params["across"] == "sum" and params["type"] == "inverter" and params["site"] == site
    midnight = datetime.now(PARIS).replace(hour=0, minute=0, second=0, microsecond=0)
    assert params["start"] == format_time(midnight)
    assert 'data-source="/telemetry/latest?site=' in html
    assert "No telemetry yet" in html and "data-telemetry-latest-empty hidden" in html
    no_inline_code(html)


def test_a_site_without_telemetry_shows_the_empty_state(
    app: Flask, tenant: Tenant, world: World
) -> None:
    html = (
        logged_in(app, "viewer")
        .get(f"/sites/{world.far.site['id']}/telemetry")
        .get_data(as_text=True)
    )
    assert "data-telemetry-latest-empty>" in html  # not hidden
    assert "POST /api/v1/telemetry" in html


def test_another_tenants_site_and_a_site_out_of_reach_are_404(
    app: Flask, client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    admin = logged_in(app, "admin")
    assert admin.get(f"/sites/{world.foreign.site['id']}/telemetry").status_code == 404
    assert admin.get(f"/telemetry/latest?site={world.foreign.site['id']}").status_code == 404
    member = add_member(db, tenant, "fieldtech", "none")
    given(give(client, tenant.headers(), member.user_id, "viewer", site_id=world.mine.site["id"]))
    tech = app.test_client()
    assert log_in(tech, member.email).status_code == 303
    assert tech.get(f"/sites/{world.mine.site['id']}/telemetry").status_code == 200
    assert tech.get(f"/sites/{world.far.site['id']}/telemetry").status_code == 404
    assert tech.get(f"/telemetry/query?asset={world.far.inverter['id']}").status_code == 404


def test_the_pages_json_is_the_apis(
    app: Flask, client: FlaskClient, tenant: Tenant, world: World
) -> None:
    params = {
        "asset": world.mine.inverter["id"],
        "metric": "ac_power_kw",
        "every": "1m",
        "start": format_time(world.base),
        "end": format_time(world.base + timedelta(minutes=2)),
    }
    page = logged_in(app, "viewer").get("/telemetry/query", query_string=params)
    api = client.get("/api/v1/telemetry/query", query_string=params, headers=tenant.headers())
    assert page.status_code == 200 and page.mimetype == "application/json"
    assert page.get_json() == api.get_json()
    assert [p[1] for p in page.get_json()["series"][0]["points"]] == [10.5, 12.5]
    csv = logged_in(app, "viewer").get("/telemetry/query", query_string={**params, "format": "csv"})
    assert csv.mimetype == "text/csv"
    assert csv.get_data(as_text=True).splitlines()[0] == "time,asset_id,metric,value"
    latest = logged_in(app, "viewer").get(
        "/telemetry/latest", query_string={"asset": world.mine.inverter["id"]}
    )
    assert [r["value"] for r in latest.get_json()["readings"]] == [17.0]


def test_the_pages_json_refuses_bad_input_without_a_500(
    app: Flask, tenant: Tenant, world: World
) -> None:
    viewer = logged_in(app, "viewer")
    assert (
        viewer.get(f"/telemetry/query?asset={world.mine.inverter['id']}&every=soon").status_code
        == 400
    )
    assert (
        viewer.get(f"/telemetry/query?asset={world.mine.inverter['id']}&across=sum").status_code
        == 422
    )


def test_the_pages_json_needs_a_session(client: FlaskClient, tenant: Tenant, world: World) -> None:
    response = client.get(f"/telemetry/query?asset={world.mine.inverter['id']}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    bearer = client.get(
        f"/telemetry/latest?asset={world.mine.inverter['id']}", headers=tenant.headers()
    )
    assert bearer.status_code == 302

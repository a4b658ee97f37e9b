"""Telemetry in a real browser: the real server, Debian's Chromium, driven by Playwright.

Points are written to the server's telemetry file (the embedded store; several processes
may open it). Log in, open an asset page: the chart's SVG line is drawn from the page's
JSON, with a hover read-out and a data table; the metric picker switches to a metric
without data and the empty state shows. Then the site dashboard: the latest values and
the site's summed inverter power. ``OUTPOST_SCREENSHOTS=<dir>`` keeps a screenshot of
each step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleet import post
from outpost.clock import utcnow
from outpost.telemetry.query_request import to_ns
from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import NS_PER_SECOND, Point
from support.browser import CHROMIUM, MISSING, chromium_page
from support.web import SmallFleet

if not CHROMIUM.exists():
    pytest.skip(MISSING, allow_module_level=True)
pytest.importorskip(
    "playwright.sync_api", reason="the playwright module is missing (pip install playwright)"
)


def _inverter(client: Any, tenant: Any, fleet: SmallFleet) -> dict[str, Any]:
    return post(
        client,
        "/api/v1/assets",
        {
            "site_id": fleet.site["id"],
            "parent_id": fleet.gateway["id"],
            "type": "inverter",
            "name": "P1 inverter",
            "serial": "P1-INV1",
            "config": {"modbus_address": 3, "rated_power_kw": 60},
        },
        tenant.headers(),
    )


def _write(tmp_path: Path, org_id: str, sensor: str, inverter: str) -> None:
    """Three hours of one point a minute, ending a minute ago."""
    end = to_ns(utcnow().replace(second=0, microsecond=0)) - 60 * NS_PER_SECOND
    minute = 60 * NS_PER_SECOND
    points = [
        Point(org_id, sensor, "value", end - k * minute, 20.0 + (k % 7) * 0.5) for k in range(180)
    ]
    points += [
        Point(org_id, inverter, "ac_power_kw", end - k * minute, 40.0 + (k % 10))
        for k in range(180)
    ]
    store = SQLiteTelemetryStore(tmp_path / "telemetry.db")
    try:
        store.write(points)
    finally:
        store.close()


def test_charts_and_latest_values_in_a_browser(
    server: str, client: Any, tenant: Any, fleet: SmallFleet, tmp_path: Path
) -> None:
    inverter = _inverter(client, tenant, fleet)
    _write(tmp_path, tenant.org_id, fleet.sensor["id"], inverter["id"])
    with chromium_page("telemetry-") as browser:
        page, problems, shoot = browser.page, browser.problems, browser.shoot

        page.goto(f"{server}/login")
        page.fill("#email", "viewer@acme-solar.test")
        page.fill("#password", "correct horse battery")
        page.click("button:has-text('Log in')")
        page.wait_for_selector("h1:has-text('Fleet')")

        page.goto(f"{server}/assets/{fleet.sensor['id']}")
        line = page.wait_for_selector("#asset-telemetry-chart svg path.line")
        assert line is not None
        d = line.get_attribute("d") or ""
        assert d.startswith("M") and d.count("L") >= 30  # 36 five-minute windows in 3 hours
        label = page.get_attribute("#asset-telemetry-chart svg", "aria-label") or ""
        assert label.startswith("Reading of P1 temperature:") and "points, latest" in label
        assert page.is_hidden("[data-telemetry-empty]")
        page.hover("#asset-telemetry-chart svg", position={"x": 600, "y": 120})
        hover = page.wait_for_selector(".telemetry-hover text")
        assert hover is not None and " · " in hover.text_content()
        page.click(".telemetry-table summary")
        rows = page.locator("[data-telemetry-rows] tr")
        assert rows.count() >= 36
        shoot("asset-chart")

        page.goto(f"{server}/assets/{inverter['id']}")
        page.wait_for_selector("#asset-telemetry-chart svg path.line")
        assert "kW" in (page.text_content("#asset-telemetry-chart svg .telemetry-axes") or "")
        page.select_option("[data-telemetry-picker]", "dc_voltage_v")
        page.wait_for_selector("[data-telemetry-empty]:not([hidden])")
        assert "No telemetry yet" in page.inner_text("[data-telemetry-empty]")
        assert "metric=dc_voltage_v" in (page.get_attribute("[data-telemetry-csv]", "href") or "")
        shoot("asset-empty")

        page.goto(f"{server}/sites/{fleet.site['id']}")
        page.click("a:has-text('Telemetry')")
        page.wait_for_selector("h1:has-text('telemetry')")
        table = page.inner_text("table.telemetry-latest")
        assert "P1 temperature" in table and "P1 inverter" in table and "kW" in table
        page.wait_for_selector("table.telemetry-latest[data-state='live']")  # refreshed by script
        sensor_row = page.inner_text(f"tr[data-asset='{fleet.sensor['id']}'][data-metric='value']")
        assert "20" in sensor_row
        power = page.wait_for_selector("#site-power-chart svg path.line")
        assert power is not None and (power.get_attribute("d") or "").startswith("M")
        shoot("site-dashboard")
        assert not problems, problems  # no CSP violations or script errors

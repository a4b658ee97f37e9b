"""End to end in a real browser: the real server, Debian's Chromium, driven by Playwright.

Log in, open the fleet, open a site, enter an invalid config value, see the error beside
the field, fix it, save, and see the change in the asset's history. Set
``OUTPOST_SCREENSHOTS=<dir>`` to keep a screenshot of each step.
"""

from __future__ import annotations

import pytest

from support.browser import CHROMIUM, MISSING, chromium_page

if not CHROMIUM.exists():
    pytest.skip(MISSING, allow_module_level=True)
pytest.importorskip(
    "playwright.sync_api", reason="the playwright module is missing (pip install playwright)"
)


def test_edit_asset_config_in_a_browser(server, fleet, tmp_path):
    with chromium_page() as browser:
        page, problems, shoot = browser.page, browser.problems, browser.shoot

        page.goto(f"{server}/")
        assert "/login" in page.url
        page.fill("#email", "operator@acme-solar.test")
        page.fill("#password", "correct horse battery")
        page.click("button:has-text('Log in')")
        page.wait_for_selector("h1:has-text('Fleet')")
        assert "operator@acme-solar.test" in page.inner_text(".who")
        shoot("fleet")

        page.click("a:has-text('Plant P1')")
        page.wait_for_selector("h2:has-text('Assets')")
        page.click("a:has-text('P1 temperature')")
        page.wait_for_selector("h2:has-text('Edit asset')")

        page.fill("[name='config.sampling_interval_s']", "fast")
        page.click("button:has-text('Save asset')")
        error = page.wait_for_selector("#config-sampling_interval_s-error")
        assert "not of type 'integer'" in error.inner_text()
        field = page.locator(".field.has-error").filter(
            has=page.locator("#f-config-sampling_interval_s")
        )
        assert field.count() == 1  # the message sits beside its field
        shoot("asset-error")

        page.fill("[name='config.sampling_interval_s']", "20")
        page.fill("[name='reason']", "faster sampling")
        page.click("button:has-text('Save asset')")
        page.wait_for_selector("text=The asset was saved.")
        history = page.inner_text("table.history")
        assert "config.sampling_interval_s" in history
        assert "30" in history and "20" in history and "faster sampling" in history
        assert page.input_value("[name='config.sampling_interval_s']") == "20"
        shoot("asset-saved")
        assert not problems, problems  # no CSP violations or script errors

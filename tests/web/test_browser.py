"""End to end in a real browser: the real server, Debian's Chromium, driven by Playwright.

Log in, open the fleet, open a site, enter an invalid config value, see the error beside
the field, fix it, save, and see the change in the asset's history. Set
``OUTPOST_SCREENSHOTS=<dir>`` to keep a screenshot of each step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.browser import CHROMIUM, CHROMIUM_ARGS, MISSING
from support.server import running_server

if not CHROMIUM.exists():
    pytest.skip(MISSING, allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright module is missing (pip install playwright)"
)


@pytest.fixture
def server(database_url: str, tmp_path: Path, db: object) -> Iterator[str]:
    """The real ``outpost serve`` on this test's database."""
    with running_server(database_url, tmp_path, workers=1) as running:
        yield running.base_url


def test_edit_asset_config_in_a_browser(server, fleet, tmp_path):
    shots = os.environ.get("OUTPOST_SCREENSHOTS")

    def shoot(page, name: str) -> None:
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on(
                "console",
                lambda m: (
                    problems.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )

            page.goto(f"{server}/")
            assert "/login" in page.url
            page.fill("#email", "operator@acme-solar.test")
            page.fill("#password", "correct horse battery")
            page.click("button:has-text('Log in')")
            page.wait_for_selector("h1:has-text('Fleet')")
            assert "operator@acme-solar.test" in page.inner_text(".who")
            shoot(page, "fleet")

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
            shoot(page, "asset-error")

            page.fill("[name='config.sampling_interval_s']", "20")
            page.fill("[name='reason']", "faster sampling")
            page.click("button:has-text('Save asset')")
            page.wait_for_selector("text=The asset was saved.")
            history = page.inner_text("table.history")
            assert "config.sampling_interval_s" in history
            assert "30" in history and "20" in history and "faster sampling" in history
            assert page.input_value("[name='config.sampling_interval_s']") == "20"
            shoot(page, "asset-saved")
            assert not problems, problems  # no CSP violations or script errors
        finally:
            browser.close()

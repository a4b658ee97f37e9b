"""Debian's Chromium for Playwright tests: where it is, how to launch it here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and quiet: this machine's network is closed, so no background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = f"{CHROMIUM} is missing (apt-get install -y chromium)"


@dataclass
class BrowserPage:
    """A Chromium page, the script and console errors it reported, and a screenshot hook."""

    page: Any
    problems: list[str]
    shots: str | None
    prefix: str

    def shoot(self, name: str) -> None:
        """Keep a screenshot of this step when ``OUTPOST_SCREENSHOTS=<dir>`` is set."""
        if self.shots:
            Path(self.shots).mkdir(parents=True, exist_ok=True)
            target = Path(self.shots) / f"{self.prefix}{name}.png"
            self.page.screenshot(path=str(target), full_page=True)


@contextmanager
def chromium_page(prefix: str = "") -> Iterator[BrowserPage]:
    """A fresh headless page that records page errors and console errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
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
            yield BrowserPage(page, problems, os.environ.get("OUTPOST_SCREENSHOTS"), prefix)
        finally:
            browser.close()

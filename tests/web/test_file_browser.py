"""The file UI in a real browser: the real server, Debian's Chromium, driven by Playwright.

Log in, open a site, upload an image through the upload script (progress bar, then a
reload that lists it), drop a second file on the form, open the image's page and see
its preview, open and close the share dialog. Set ``OUTPOST_SCREENSHOTS=<dir>`` to keep
a screenshot of each step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from outpost.demo_files import tiny_png
from support.browser import CHROMIUM, MISSING, chromium_page

if not CHROMIUM.exists():
    pytest.skip(MISSING, allow_module_level=True)
pytest.importorskip(
    "playwright.sync_api", reason="the playwright module is missing (pip install playwright)"
)

#: Records, across the reload, that an upload progress bar reached 100.
WATCH_PROGRESS = """() => {
  sessionStorage.removeItem("progress-done");
  new MutationObserver(() => {
    for (const bar of document.querySelectorAll(".upload-list progress")) {
      if (bar.value >= 100) sessionStorage.setItem("progress-done", bar.max + ":" + bar.value);
    }
  }).observe(document.body, { subtree: true, attributes: true, childList: true });
}"""

#: Drops a small text file on the upload form, as a drag from the desktop would.
DROP_FILE = """(form) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File(["dropped line\\n"], "dropped.txt", { type: "text/plain" }));
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
    form.dispatchEvent(new DragEvent(type, init));
  }
}"""


def test_upload_preview_and_share_dialog_in_a_browser(
    server: str, fleet: Any, tmp_path: Path
) -> None:
    image = tmp_path / "panel.png"
    image.write_bytes(tiny_png(2, 1))

    with chromium_page("files-") as browser:
        page, problems, shoot = browser.page, browser.problems, browser.shoot

        page.goto(f"{server}/login")
        page.fill("#email", "admin@acme-solar.test")
        page.fill("#password", "correct horse battery")
        page.click("button:has-text('Log in')")
        page.wait_for_selector("h1:has-text('Fleet')")
        page.click("a:has-text('Plant P1')")
        page.wait_for_selector("h2:has-text('Files')")
        assert page.is_visible(".drop-hint")  # the script enhanced the form
        assert page.get_attribute("#upload-file", "multiple") is not None

        # chosen with the file input: the script sends it, not the plain form
        page.evaluate(WATCH_PROGRESS)
        page.set_input_files("#upload-file", str(image))
        page.fill("#upload-description", "Roof panel")
        with (
            page.expect_response(lambda r: r.url.endswith("/files/upload")) as sent,
            page.expect_navigation(url="**notice=file-uploaded**"),
        ):
            page.click("form[data-upload] button[type=submit]")
        assert sent.value.status == 201
        assert sent.value.request.headers["accept"] == "application/json"
        assert page.evaluate("sessionStorage.getItem('progress-done')") == "100:100"
        page.wait_for_selector("text=The file was uploaded.")
        assert "panel.png" in page.inner_text("table.files")
        assert "Roof panel" in page.inner_text("table.files")
        shoot("uploaded")

        # dropped on the form
        form = page.query_selector("form[data-upload]")
        with page.expect_navigation(url="**notice=file-uploaded**"):
            page.evaluate(DROP_FILE, form)
        listed = page.inner_text("table.files")
        assert "dropped.txt" in listed and "panel.png" in listed

        # the image's page: its preview is the real image, served inline
        page.click("table.files a:has-text('panel.png')")
        page.wait_for_selector("h2:has-text('Versions')")
        preview = page.wait_for_selector("img.preview-image")
        page.wait_for_function(
            "() => document.querySelector('img.preview-image').complete"
            " && document.querySelector('img.preview-image').naturalWidth > 0"
        )
        assert preview.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [2, 1]
        assert not page.is_visible("#share-dialog")

        # the share dialog opens in place (no ?share=1 navigation) and closes
        before = page.url
        page.click("a:has-text('Share…')")
        page.wait_for_selector("#share-dialog", state="visible")
        assert page.evaluate("document.querySelector('#share-dialog').matches(':modal')")
        assert page.url == before
        assert page.is_visible("#share-dialog button:has-text('Create link')")
        shoot("share-dialog")
        page.click("#share-dialog [data-close-dialog]")
        page.wait_for_selector("#share-dialog", state="hidden")
        assert page.url == before
        assert not problems, problems  # no CSP violations or script errors

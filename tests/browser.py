"""Headless Chromium for end-to-end page tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

SCREENSHOTS = Path(os.environ.get("COMMS_SCREENSHOTS", "/tmp/comms-screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextlib.contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
        finally:
            browser.close()

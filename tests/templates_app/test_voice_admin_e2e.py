"""A voice template in the Django admin: the spoken text is edited in the locale form and previewed as
text (markup in a variable stays text), at desktop and phone widths (headless Chromium)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.browser import admin_login, admin_staff, admin_template_add, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(os.environ.get("COMMS_VOICE_SHOTS", "/tmp/shots-i18-voice"))


def test_editor_writes_and_previews_a_voice_template(live_server, settings, tenant):
    settings.COMMS_ASSET_CHECK = False
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin_staff("vera", "CommsEditor")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "vera")
        admin_template_add(page, base, key="appointment_call", name="Appointment call", channels="voice")
        page.fill("#id_variables_schema", json.dumps({"type": "object", "properties": {"name": {"type": "string"}}}))
        page.fill("#id_sample_variables", json.dumps({"name": "Ada <Play>x</Play>"}))
        page.fill("#id_locales-0-voice_text", "Hello {{name}}, your appointment is tomorrow at nine.")
        page.click("input[name=_continue]")
        preview = page.locator(".comms-preview[data-channel=voice]")
        preview.wait_for()
        assert preview.locator("p").inner_text() == "Hello Ada <Play>x</Play>, your appointment is tomorrow at nine."
        assert preview.locator("play").count() == 0  # shown as text, never as an element
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"voice-template-{width}.png"), full_page=True)
            textarea = page.locator("#id_locales-0-voice_text").bounding_box()
            assert textarea and textarea["width"] > 0
            # nothing wider than the page but the admin's own scrolling form table
            overflow = page.evaluate("document.querySelector('.comms-preview[data-channel=voice]').scrollWidth"
                                     " <= document.querySelector('.comms-preview[data-channel=voice]').clientWidth")
            assert overflow

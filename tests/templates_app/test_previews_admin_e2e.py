"""The approver sees Chromium screenshots (light/dark side by side, mobile, and the RTL locale) on the version page."""

from __future__ import annotations

import os

import pytest

from templates_app import services
from templates_app.models import TemplatePreview
from tests.browser import admin_login, admin_staff, browser_page
from tests.templates_app.rtl_fixtures import rtl_template_data

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = "/tmp/shots-i20-preview"


def test_approver_sees_light_dark_mobile_and_rtl_previews(live_server, tenant, settings):
    settings.COMMS_ASSET_CHECK = False
    edith = admin_staff("edith", "CommsEditor")
    admin_staff("arthur", "CommsApprover")
    template = services.template_create(tenant=tenant, actor=edith, user=edith, data=rtl_template_data())
    version = services.version_submit(version=template.versions.get(), actor=edith, user=edith)
    os.makedirs(SHOTS, exist_ok=True)
    with browser_page() as page:
        admin_login(page, live_server.url, "arthur")
        page.goto(f"{live_server.url}/admin/templates_app/templateversion/{version.pk}/change/")
        shots = page.locator(".comms-shots")
        shots.wait_for()
        for locale, direction in (("en-US", "ltr"), ("ar-EG", "rtl")):
            section = page.locator(f".comms-shot-locale[data-locale={locale}]")
            assert section.get_attribute("data-dir") == direction
            modes = [f.get_attribute("data-mode") for f in section.locator("figure").all()]
            assert modes == ["desktop", "dark", "mobile"]  # light and dark next to each other
            for mode, width in (("desktop", 800), ("dark", 800), ("mobile", 360)):
                img = section.locator(f"figure[data-mode={mode}] img")
                img.scroll_into_view_if_needed()
                page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
                assert img.evaluate("i => i.naturalWidth") == width
        assert "right to left" in page.locator(".comms-shot-locale[data-locale=ar-EG] h4").inner_text()
        page.screenshot(path=f"{SHOTS}/admin-approval-1280.png", full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        page.locator(".comms-shots").scroll_into_view_if_needed()
        assert page.evaluate("document.querySelector('.comms-shots').getBoundingClientRect().right") <= 360
        widest = page.evaluate("Math.max(...[...document.querySelectorAll('.comms-shot img')]"
                               ".map(i => i.getBoundingClientRect().right))")
        assert widest <= 360  # every image fits the phone's width
        page.screenshot(path=f"{SHOTS}/admin-approval-360.png", full_page=True)
        page.locator(".comms-shots").screenshot(path=f"{SHOTS}/admin-approval-360-previews.png")
    assert TemplatePreview.objects.filter(version=version).count() == 6  # stored with the approval request

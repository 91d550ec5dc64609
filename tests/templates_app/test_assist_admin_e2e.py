"""The Assistant panel on a version's admin page, in headless Chromium: the SMS suggestion and variable
warnings, subject suggestions and draft translations through the chat-completions stand-in, and the
"assistant is off" notice without an endpoint. Screenshots at 1280 and 360 px."""

from __future__ import annotations

import copy
import os

import pytest

from comms.devserver.embedded import free_port
from comms.devserver.standins.llm import LlmStandIn
from templates_app import services
from templates_app.models import Template
from tests.browser import admin_login, admin_staff, browser_page
from tests.templates_app.fixtures import order_template_data

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = "/tmp/shots-i22-assist"


def _no_overflow(page, selector: str) -> None:
    """Every element of `selector` ends inside a 360 px screen (the admin's own wide fields may scroll)."""
    widest = page.evaluate(f"Math.max(...[...document.querySelectorAll('{selector}')]"
                           ".map(e => e.getBoundingClientRect().right))")
    assert widest <= 360, (selector, widest)


def test_assistant_panel_suggests_and_drafts_without_applying(live_server, tenant, settings, tmp_path):
    settings.COMMS_ASSET_CHECK = False
    # The version page's preview screenshots are another feature's (and launch Chromium per image): off here.
    settings.COMMS_PREVIEW_CHROMIUM = str(tmp_path / "no-chromium")
    stand_in = LlmStandIn(port=free_port())
    settings.COMMS_LLM_BASE_URL, settings.COMMS_LLM_MODEL, settings.COMMS_LLM_TIMEOUT = stand_in.url, "standin-1", 3.0
    edith = admin_staff("edith", "CommsEditor")
    data = copy.deepcopy(order_template_data())
    data["locales"][0]["sms_text"] = ("Hi {{user.first_name}} — order “{{order.id}}” is on its way… 🚚 Track it at "
                                      "{{order.url}}\u00a0— thanks for shopping with {{shop}}!")
    template = services.template_create(tenant=tenant, actor=edith, user=edith, data=data)
    version = template.versions.get()
    os.makedirs(SHOTS, exist_ok=True)
    try:
        with browser_page() as page:
            admin_login(page, live_server.url, "edith")
            page.goto(f"{live_server.url}/admin/templates_app/templateversion/{version.pk}/change/")
            panel = page.locator(".comms-assist")
            panel.wait_for()
            english = panel.locator(".comms-assist-sms li[data-locale=en-US]")
            assert english.get_attribute("data-changed") == "yes"
            assert "UCS-2 · 2 segment(s) → GSM-7 · 1 segment(s)" in english.inner_text()
            suggestion = english.locator("pre").inner_text()
            assert "{{order.url}}" in suggestion and "“" not in suggestion and "🚚" not in suggestion
            assert panel.locator(".comms-assist-vars li[data-code=VAR_UNDECLARED]").inner_text().startswith("'shop'")
            assert "standin-1" in panel.locator(".comms-assist-on").inner_text()
            panel.scroll_into_view_if_needed()
            page.screenshot(path=f"{SHOTS}/assistant-1280.png", full_page=True)
            panel.screenshot(path=f"{SHOTS}/assistant-panel-1280.png")
            page.set_viewport_size({"width": 360, "height": 800})
            panel.scroll_into_view_if_needed()
            _no_overflow(page, ".comms-assist pre, .comms-assist li, .comms-assist button")
            panel.screenshot(path=f"{SHOTS}/assistant-panel-360.png")
            page.set_viewport_size({"width": 1280, "height": 900})

            page.click("button[name=assist_subjects]")
            page.locator(".comms-assist-list li").first.wait_for()
            items = page.locator(".comms-assist-list li").all_inner_texts()
            assert items[1] == "Update: Order {{order.id}} confirmed, {{user.first_name}}"
            page.screenshot(path=f"{SHOTS}/subjects-1280.png", full_page=True)
            page.set_viewport_size({"width": 360, "height": 800})
            _no_overflow(page, ".comms-assist-list li, .comms-assist-subjects a.button")
            page.screenshot(path=f"{SHOTS}/subjects-360.png", full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.click("a.button")

            page.fill("#assist_locales", "fr, es-MX")
            page.click("button[name=assist_translate]")
            page.locator(".messagelist .success").wait_for()
            assert "Draft translations into fr, es-MX written to draft v1" in page.locator(".messagelist").inner_text()
            page.screenshot(path=f"{SHOTS}/translated-1280.png", full_page=True)
        assert sorted(Template.objects.get().versions.get().locales.values_list("locale", flat=True)) == [
            "de", "en-US", "es-MX", "fr"]
        assert Template.objects.get().active_version_id is None  # drafts only: nothing was activated

        settings.COMMS_LLM_BASE_URL = ""
        with browser_page() as page:
            admin_login(page, live_server.url, "edith")
            page.goto(f"{live_server.url}/admin/templates_app/templateversion/{version.pk}/change/")
            off = page.locator(".comms-assist-off")
            assert "assistant is off" in off.inner_text()
            assert page.locator("button[name=assist_subjects]").count() == 0
            page.set_viewport_size({"width": 360, "height": 800})
            page.locator(".comms-assist").scroll_into_view_if_needed()
            page.locator(".comms-assist").screenshot(path=f"{SHOTS}/assistant-off-360.png")
    finally:
        stand_in.close()

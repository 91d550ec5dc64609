"""A content editor and an approver in the Django admin, in headless Chromium."""

from __future__ import annotations

import os

import pytest

from templates_app.models import Template
from tests.browser import (
    SCREENSHOTS, admin_approve_as, admin_draft_save, admin_login, admin_staff, admin_submit_for_review,
    admin_template_add, browser_page,
)
from tests.templates_app.fixtures import ORDER_MJML, SCHEMA, variables

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

BROKEN_MJML = ("<mjml><mj-body><mj-section><mj-column><mj-text>{{#if x}}"
               "</mj-text></mj-column></mj-section></mj-body></mjml>")
SMS = "Order {{order.id}}: {{formatCurrency order.total order.currency}}"


def test_editor_creates_previews_submits_and_approver_approves(live_server, settings, tenant):
    settings.COMMS_ASSET_CHECK = False
    admin_staff("edith", "CommsEditor")
    admin_staff("arthur", "CommsApprover")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "edith")
        admin_template_add(page, base, key="order_confirmation", name="Order confirmation", channels="email,sms",
                           screenshot="template-after-add.png")
        admin_draft_save(page, subject="Order {{order.id}} confirmed", body_html=BROKEN_MJML, schema=SCHEMA,
                         sample=variables(), sms_text=SMS)
        errors = page.locator("#locales-group .errorlist").first.inner_text()
        assert "never closed" in errors and "line 1" in errors  # nothing saved, the editor sees where

        admin_draft_save(page, subject="Order {{order.id}} confirmed", body_html=ORDER_MJML)
        page.wait_for_selector(".comms-preview[data-channel=email] iframe")
        frame = page.frame_locator(".comms-preview[data-channel=email] iframe")
        assert "Hello Ada" in frame.locator("body").inner_text()
        assert page.locator(".comms-preview[data-channel=email] iframe").get_attribute("sandbox") == ""
        assert "GSM-7" in page.locator(".comms-preview[data-channel=sms]").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "template-draft-preview.png"), full_page=True)
        page.locator(".comms-preview[data-channel=email]").screenshot(path=str(SCREENSHOTS / "template-email-preview.png"))

        admin_submit_for_review(page)
        assert page.locator("button[name=approve]").count() == 1
        version = admin_approve_as(page, base, "arthur", key="order_confirmation", notes="Copy and prices checked")
        page.screenshot(path=str(SCREENSHOTS / "template-approved.png"), full_page=True)
        page.goto(f"{base}/admin/templates_app/template/")
        assert "v1" in page.locator("#result_list").inner_text()
    template = Template.objects.get(template_key="order_confirmation")
    assert template.active_version == version
    assert version.reviews.get().notes == "Copy and prices checked"

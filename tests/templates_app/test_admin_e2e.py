"""A content editor and an approver in the Django admin, in headless Chromium."""

from __future__ import annotations

import json
import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from templates_app.models import Template
from tests.browser import SCREENSHOTS, browser_page
from tests.templates_app.fixtures import ORDER_MJML, SCHEMA, variables

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _staff(name: str, group: str):
    from admin_console.roles import roles_ensure

    roles_ensure()  # transactional tests truncate tables, migration-made groups included
    user = get_user_model().objects.create_user(name, f"{name}@example.com", f"{name}-secret-pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def _login(page, base: str, name: str):
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", f"{name}-secret-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_editor_creates_previews_submits_and_approver_approves(live_server, settings, tenant):
    settings.COMMS_ASSET_CHECK = False
    _staff("edith", "CommsEditor")
    _staff("arthur", "CommsApprover")
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "edith")
        page.goto(f"{base}/admin/templates_app/template/add/")
        page.fill("#id_template_key", "order_confirmation")
        page.fill("#id_name", "Order confirmation")
        page.fill("#id_channels", "email,sms")
        page.click("input[name=_save]")
        page.screenshot(path=str(SCREENSHOTS / "template-after-add.png"), full_page=True)
        page.wait_for_selector("#workflow")  # landed on the new draft version

        page.fill("#id_variables_schema", json.dumps(SCHEMA))
        page.fill("#id_sample_variables", json.dumps(variables()))
        page.fill("#id_locales-0-subject", "Order {{order.id}} confirmed")
        page.fill("#id_locales-0-body_html", "<mjml><mj-body><mj-section><mj-column><mj-text>{{#if x}}"
                                             "</mj-text></mj-column></mj-section></mj-body></mjml>")
        page.fill("#id_locales-0-sms_text", "Order {{order.id}}: {{formatCurrency order.total order.currency}}")
        page.click("input[name=_continue]")
        errors = page.locator("#locales-group .errorlist").first.inner_text()
        assert "never closed" in errors and "line 1" in errors  # nothing saved, the editor sees where

        page.fill("#id_locales-0-body_html", ORDER_MJML)
        page.click("input[name=_continue]")
        page.wait_for_selector(".comms-preview[data-channel=email] iframe")
        frame = page.frame_locator(".comms-preview[data-channel=email] iframe")
        assert "Hello Ada" in frame.locator("body").inner_text()
        assert page.locator(".comms-preview[data-channel=email] iframe").get_attribute("sandbox") == ""
        assert "GSM-7" in page.locator(".comms-preview[data-channel=sms]").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "template-draft-preview.png"), full_page=True)
        page.locator(".comms-preview[data-channel=email]").screenshot(path=str(SCREENSHOTS / "template-email-preview.png"))

        page.click("button[name=submit_for_review]")
        assert "submitted for review" in page.locator(".messagelist").inner_text()
        assert page.locator("button[name=approve]").count() == 1
        with page.expect_navigation(url="**/admin/logout/"):
            page.evaluate("document.querySelector('#logout-form').submit()")

        _login(page, base, "arthur")
        version = Template.objects.get(template_key="order_confirmation").versions.get()
        page.goto(f"{base}/admin/templates_app/templateversion/{version.pk}/change/")
        page.fill("textarea[name=approve_notes]", "Copy and prices checked")
        page.click("button[name=approve]")
        assert "approved and live" in page.locator(".messagelist").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "template-approved.png"), full_page=True)
        page.goto(f"{base}/admin/templates_app/template/")
        assert "v1" in page.locator("#result_list").inner_text()
    template = Template.objects.get(template_key="order_confirmation")
    assert template.active_version == version
    assert version.reviews.get().notes == "Copy and prices checked"

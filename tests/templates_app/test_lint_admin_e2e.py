"""The lint in the admin, in headless Chromium: the approver is refused while an error finding stands,
the editor overrides the rule with a reason, the approver sees who/when/why and approves. Screenshots
at 1280 and 360 px wide."""

from __future__ import annotations

import os

import pytest

from templates_app import services
from templates_app.models import TemplateVersion
from tests.browser import SCREENSHOTS, admin_login, admin_logout, admin_staff, browser_page
from tests.templates_app.lint_fixtures import GOOD_BODY, email_template, mjml

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_override_then_approve_in_the_admin(live_server, settings, tenant):
    settings.COMMS_ASSET_CHECK = False
    editor, _ = admin_staff("edith", "CommsEditor"), admin_staff("arthur", "CommsApprover")
    template = email_template(tenant, editor, body_html=mjml(
        GOOD_BODY + '<mj-text color="#aaaaaa">Small grey terms and conditions apply to every order.</mj-text>'
        '<mj-table><tr><td>Parcel</td><td>1</td></tr></mj-table>'))
    version = services.version_submit(version=template.versions.get(), actor=editor, user=editor)
    url = f"{live_server.url}/admin/templates_app/templateversion/{version.pk}/change/"
    with browser_page() as page:
        admin_login(page, live_server.url, "arthur")
        page.goto(url)
        lint = page.locator(".comms-lint")
        assert lint.get_attribute("data-blocking") == "A11Y_CONTRAST"
        assert page.locator(".comms-lint-findings tr.lint-error").count() == 1
        assert page.locator(".comms-lint-findings tr.lint-warning[data-rule=A11Y_TABLE_ROLE]").count() == 1
        assert "Approval blocked by: A11Y_CONTRAST" in lint.inner_text()
        page.click("button[name=approve]")
        assert "accessibility errors (A11Y_CONTRAST)" in page.locator(".messagelist").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "lint-blocked-1280.png"), full_page=True)
        admin_logout(page)

        admin_login(page, live_server.url, "edith")
        page.goto(url)
        page.select_option("#lint_rule", "A11Y_CONTRAST")
        page.click("button[name=lint_override]")  # no reason: refused, nothing recorded
        assert "reason is required" in page.locator(".messagelist").inner_text()
        page.fill("input[name=lint_reason]", "Legal small print; grey is the brand rule")
        page.click("button[name=lint_override]")
        assert "A11Y_CONTRAST overridden" in page.locator(".messagelist").inner_text()
        admin_logout(page)

        admin_login(page, live_server.url, "arthur")
        page.goto(url)
        override = page.locator(".comms-lint-overrides li[data-rule=A11Y_CONTRAST]").inner_text()
        assert "overridden by edith" in override and "grey is the brand rule" in override
        assert page.locator(".comms-lint-findings tr.lint-overridden").count() == 1
        page.locator(".comms-lint").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "lint-approver-1280.png"), full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        page.goto(url)
        page.locator(".comms-lint").screenshot(path=str(SCREENSHOTS / "lint-findings-360.png"))
        page.screenshot(path=str(SCREENSHOTS / "lint-approver-360.png"), full_page=True)
        # At 360 px the findings scroll inside their own box instead of widening the page.
        scroll = page.evaluate("document.querySelector('.comms-lint-scroll').getBoundingClientRect().right")
        assert scroll <= page.evaluate("document.documentElement.clientWidth") + 1
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(url)
        page.click("button[name=approve]")
        assert "approved and live" in page.locator(".messagelist").inner_text()
    assert TemplateVersion.objects.get(pk=version.pk).status == "approved"

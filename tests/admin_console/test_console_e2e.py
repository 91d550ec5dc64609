"""Editor → approver → test send → dashboard, in headless Chromium, with screenshots."""

from __future__ import annotations

import json
import os

import pytest
from django.utils import timezone

from admin_console import workers
from delivery.models import Message
from delivery.services import drain_all
from templates_app.models import Template
from tests.admin_console.seed import seed
from tests.browser import SCREENSHOTS, browser_page
from tests.templates_app.fixtures import ORDER_MJML, SCHEMA, variables
from tests.templates_app.test_admin_e2e import _login, _staff

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _logout(page):
    with page.expect_navigation(url="**/admin/logout/"):
        page.evaluate("document.querySelector('#logout-form').submit()")


def test_editor_approver_test_send_and_dashboard(live_server, settings, tenant, other_tenant, smtp_sink):
    settings.COMMS_ASSET_CHECK = False
    settings.COMMS_TEST_SEND_ALLOWLIST = ["qa@example.com"]
    _staff("edith", "CommsEditor")
    _staff("arthur", "CommsApprover")
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "edith")
        page.goto(f"{base}/admin/templates_app/template/add/")
        page.fill("#id_template_key", "order_confirmation")
        page.fill("#id_name", "Order confirmation")
        page.fill("#id_channels", "email")
        page.click("input[name=_save]")
        page.wait_for_selector("#workflow")
        page.fill("#id_variables_schema", json.dumps(SCHEMA))
        page.fill("#id_sample_variables", json.dumps(variables()))
        page.fill("#id_locales-0-subject", "Order {{order.id}} confirmed")
        page.fill("#id_locales-0-body_html", ORDER_MJML)
        page.click("input[name=_continue]")
        frame = page.frame_locator(".comms-preview[data-channel=email] iframe")
        assert "Hello Ada" in frame.locator("body").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "console-editor-preview.png"), full_page=True)
        page.click("button[name=submit_for_review]")
        assert "submitted for review" in page.locator(".messagelist").inner_text()
        # The editor cannot approve: the button posts, the workflow refuses.
        page.click("button[name=approve]")
        assert "Refused" in page.locator(".messagelist").inner_text()
        _logout(page)

        _login(page, base, "arthur")
        version = Template.objects.get(template_key="order_confirmation").versions.get()
        page.goto(f"{base}/admin/templates_app/templateversion/{version.pk}/change/")
        page.fill("textarea[name=approve_notes]", "Checked")
        page.click("button[name=approve]")
        assert "approved and live" in page.locator(".messagelist").inner_text()
        page.fill("#test_address", "someone@gmail.com")
        page.click("button[name=test_send]")
        assert "not on the test-send allow-list" in page.locator(".messagelist").inner_text()
        page.fill("#test_address", "qa@example.com")
        page.click("button[name=test_send]")
        assert "Test of order_confirmation v1 queued for qa@example.com" in page.locator(".messagelist").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "console-test-send.png"), full_page=True)
        drain_all()
        test_message = Message.objects.get(metadata__cause_event="admin.test")
        assert test_message.status == "sent"
        assert any("Order A-1001 confirmed" in m["Subject"] for m in smtp_sink.messages)
        page.click(".messagelist a")
        page.wait_for_selector(".comms-timeline")
        assert "sent" in page.locator(".comms-timeline").inner_text()
        assert "Hello Ada" in page.frame_locator(".field-rendered iframe").locator("body").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "console-message-page.png"), full_page=True)

        page.goto(f"{base}/admin/templates_app/template/{version.template_id}/change/")
        assert "v1" in page.locator("#version-history").inner_text()

        seed(n=3000, tenant=tenant, other_tenant=other_tenant, now=timezone.now())
        workers.beat(hostname="celery@p0-host", queues=["p0", "p1"])
        page.goto(f"{base}/console/")
        assert page.locator("#workers-alive").inner_text() == "1"
        queued = Message.objects.filter(status="queued", priority=0).count()
        assert page.locator("#p0-age small a").inner_text() == str(queued)
        page.screenshot(path=str(SCREENSHOTS / "console-dashboard.png"), full_page=True)
        page.screenshot(path=str(SCREENSHOTS / "console-dashboard-now.png"))
        page.locator("svg.chart").nth(1).screenshot(path=str(SCREENSHOTS / "console-quality-chart.png"))
        page.click("#queue-depth tbody tr:first-child td:nth-child(4) a")  # P0 queued → filtered list
        page.wait_for_selector("#result_list, .paginator")
        assert "status__exact=queued" in page.url and "priority__exact=0" in page.url
        page.screenshot(path=str(SCREENSHOTS / "console-dashboard-drilldown.png"), full_page=True)

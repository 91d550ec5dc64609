"""Editor → approver → test send → dashboard, in headless Chromium, with screenshots."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from admin_console import workers
from delivery.models import Message
from delivery.services import drain_all
from tests.admin_console.seed import seed
from tests.browser import (
    SCREENSHOTS, admin_approve_as, admin_draft_save, admin_login, admin_staff, admin_submit_for_review,
    admin_template_add, browser_page,
)
from tests.templates_app.fixtures import ORDER_MJML, SCHEMA, variables

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_editor_approver_test_send_and_dashboard(live_server, settings, tenant, other_tenant, smtp_sink):
    settings.COMMS_ASSET_CHECK = False
    settings.COMMS_TEST_SEND_ALLOWLIST = ["qa@example.com"]
    admin_staff("edith", "CommsEditor")
    admin_staff("arthur", "CommsApprover")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "edith")
        admin_template_add(page, base, key="order_confirmation", name="Order confirmation", channels="email")
        admin_draft_save(page, subject="Order {{order.id}} confirmed", body_html=ORDER_MJML, schema=SCHEMA,
                         sample=variables())
        frame = page.frame_locator(".comms-preview[data-channel=email] iframe")
        assert "Hello Ada" in frame.locator("body").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "console-editor-preview.png"), full_page=True)
        admin_submit_for_review(page)
        # The editor cannot approve: the button posts, the workflow refuses.
        page.click("button[name=approve]")
        assert "Refused" in page.locator(".messagelist").inner_text()

        version = admin_approve_as(page, base, "arthur", key="order_confirmation", notes="Checked")
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

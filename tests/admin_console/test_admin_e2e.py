"""The Django admin as an operator sees it: log in, find a message, read its delivery log."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from delivery.services import SendSpec, drain_all, message_enqueue
from tests.browser import SCREENSHOTS, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop in this thread
pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_logs_in_and_reads_a_message_timeline(live_server, tenant, smtp_sink):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    sent, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="ada@example.com",
                                                           subject="Welcome aboard", body="Hello"))
    smtp_sink.script("bounce@example.com", "550 5.1.1 No such user")
    failed, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="bounce@example.com",
                                                             subject="Will fail", body="x"))
    drain_all()

    with browser_page() as page:
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "wrong")
        page.click("input[type=submit]")
        assert "Please enter the correct username and password" in page.locator(".errornote").inner_text()
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector("text=Site administration")

        page.goto(f"{live_server.url}/admin/delivery/message/?status__exact=failed")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        assert "bounce@example.com" in rows.first.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "admin-messages-failed.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/delivery/message/{sent.id}/change/")
        log = page.locator("#logs-group")
        log.wait_for()
        text = log.inner_text()
        assert "Sent" in text and "smtp" in text and "object (" not in text
        assert page.locator(".field-recipient_address .readonly").inner_text() == "ada@example.com"
        page.screenshot(path=str(SCREENSHOTS / "admin-message-detail.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/delivery/message/{failed.id}/change/")
        assert "No such user" in page.locator("#logs-group").inner_text()

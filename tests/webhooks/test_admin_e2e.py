"""An operator finds an orphaned provider event in the admin and re-processes it (headless Chromium)."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from comms.enums import Status
from delivery.models import Message
from tests.browser import SCREENSHOTS, admin_login, browser_page
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_reprocesses_an_orphan_from_the_admin(live_server, client, signer, sent_message):
    sg = signer("sendgrid")
    sg.sign(sg.events(ref="late-ref", event="delivered")).send(client)
    sg.sign(sg.events(ref="x", event="bounce"), key=sg.other).send(client)  # a forged one, rejected
    row = WebhookEvent.objects.get(signature_valid=True)
    WebhookEvent.objects.filter(pk=row.pk).update(attempts=99)
    webhook_process(webhook_id=row.pk)
    assert WebhookEvent.objects.get(pk=row.pk).state == "orphan"
    message = sent_message(ref="late-ref")  # the message turns up (e.g. restored from a backup)
    get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "ops")
        page.goto(f"{base}/admin/webhooks/webhookevent/")
        page.screenshot(path=str(SCREENSHOTS / "webhook-events-list.png"), full_page=True)
        assert page.locator("#result_list tbody tr").count() == 2
        page.locator("#changelist-filter a", has_text="Orphan").click()  # the state filter
        page.wait_for_url(lambda url: "state__exact=orphan" in url)
        assert page.locator("#result_list tbody tr").count() == 1
        page.check("#result_list tbody input.action-select")
        page.select_option("select[name=action]", "reprocess")
        page.click("button[name=index]")
        page.wait_for_selector("ul.messagelist")
        assert "Re-processed: 1 processed." in page.locator("ul.messagelist").inner_text()
        page.goto(f"{base}/admin/webhooks/webhookevent/{row.pk}/change/")
        page.screenshot(path=str(SCREENSHOTS / "webhook-event-detail.png"), full_page=True)
        assert "Processed" in page.locator(".field-state").inner_text()
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert Message.objects.count() == 1

"""Suppression viewer (hash search, approver-only re-permission with consent, CSV) and webhook viewer."""

from __future__ import annotations

import pytest

from comms.models import AuditEntry
from preferences.models import Suppression
from preferences.services import suppression_add
from tests.admin_console.test_permissions import make_user
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def suppressed(tenant):
    return suppression_add(tenant=tenant, channel="email", address="Jane.Doe@example.com", reason="unsubscribe",
                           source="list-unsubscribe")


def test_search_by_address_goes_through_the_hash(client, suppressed):
    client.force_login(make_user("CommsViewer"))
    page = client.get("/admin/preferences/suppression/?q=jane.doe@example.com").content.decode()
    assert "ja…@example.com" in page and page.count('name="_selected_action"') == 1
    other = client.get("/admin/preferences/suppression/?q=john@example.com").content.decode()
    assert other.count('name="_selected_action"') == 0


@pytest.mark.parametrize("role, lifts", [("CommsViewer", False), ("CommsEditor", False), ("CommsApprover", True)])
def test_re_permission_needs_an_approver_and_documented_consent(client, suppressed, role, lifts):
    client.force_login(make_user(role))
    url = "/admin/preferences/suppression/"
    # Without consent text: the form asks for it, nothing is lifted.
    client.post(url, {"action": "lift_with_consent", "_selected_action": [suppressed.pk]})
    assert Suppression.objects.filter(pk=suppressed.pk).exists()
    client.post(url, {"action": "lift_with_consent", "_selected_action": [suppressed.pk],
                      "consent_text": "Signed form #4411, 2026-11-20: agrees to marketing email"})
    assert Suppression.objects.filter(pk=suppressed.pk).exists() is not lifts
    assert AuditEntry.objects.filter(action="suppression.lift").exists() is lifts


def test_suppression_csv_export_masks_addresses(client, suppressed):
    client.force_login(make_user("CommsViewer"))
    response = client.get("/admin/preferences/suppression/export.csv?reason__exact=unsubscribe")
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0].startswith("masked_address,channel,address_hash,reason,source")
    assert "ja…@example.com" in text and "jane.doe" not in text.lower() and suppressed.address_hash in text


def test_webhook_viewer_shows_payload_and_signature_and_reprocesses(client):
    row = WebhookEvent.objects.create(provider="postmark", event_type="Bounce", body='{"RecordType": "Bounce"}',
                                      payload={"RecordType": "Bounce", "Email": "x@example.com"},
                                      signature_valid=False, signature_error="bad basic auth", state="rejected")
    client.force_login(make_user("CommsViewer"))
    page = client.get(f"/admin/webhooks/webhookevent/{row.pk}/change/").content.decode()
    assert "INVALID" in page and "bad basic auth" in page and "&quot;RecordType&quot;: &quot;Bounce&quot;" in page
    assert client.post(f"/admin/webhooks/webhookevent/{row.pk}/reprocess/").status_code == 403
    client.force_login(make_user("superuser", "ops"))
    response = client.post(f"/admin/webhooks/webhookevent/{row.pk}/reprocess/", follow=True)
    assert "re-processed: rejected" in response.content.decode()  # a bad signature is never processed


def test_message_page_timeline_shows_provider_events_and_their_webhook(client, tenant):
    """The message page (delivery) shows tracking's provider events through the timeline-source hook."""
    from delivery.models import Message
    from tracking.models import MessageEvent

    message = Message.objects.create(tenant=tenant, channel="email", recipient_address="ada@example.com",
                                     status="sent", subject="Hi", body="Hi")
    hook = WebhookEvent.objects.create(provider="postmark", event_type="Bounce", body="{}", payload={},
                                       signature_valid=True, state="processed")
    MessageEvent.objects.create(tenant=tenant, message=message, event_type="bounced", bounce_type="hard",
                                provider="postmark", webhook=hook, reason="mailbox unknown")
    client.force_login(make_user("CommsViewer"))
    page = client.get(f"/admin/delivery/message/{message.pk}/change/").content.decode()
    assert "provider event" in page and "bounced (hard)" in page and "mailbox unknown" in page
    assert f"/admin/webhooks/webhookevent/{hook.pk}/change/" in page and "(signature valid)" in page

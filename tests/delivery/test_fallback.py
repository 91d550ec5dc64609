"""Multi-channel fallback (EC-COM-010): no address or a permanent failure moves to the next channel."""

from __future__ import annotations

import pytest

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(admin_api):
    admin_api.put("/api/v1/recipients/both", {"email": "both@example.com", "phone": "+14155550124"}, format="json")
    admin_api.put("/api/v1/recipients/email-only", {"email": "mail@example.com"}, format="json")


def test_a_permanent_sms_failure_continues_by_email(admin_api, people, twilio, smtp_sink):
    twilio.failures["+14155550124"] = [(400, 21614, "'To' number is not a valid mobile number")]
    response = admin_api.post("/api/v1/messages", {"channel": "sms", "recipient_id": "both", "subject": "Code",
                                                   "body": "Your code is 1234", "fallback_channels": ["email"]},
                              format="json")
    assert response.status_code == 202, response.content
    original = response.json()["id"]
    drain_all()
    failed = Message.objects.get(id=original)
    assert failed.status == Status.FAILED and failed.failure_code == "21614"
    follow_up = Message.objects.get(fallback_of_id=original)
    assert (follow_up.channel, follow_up.recipient_address) == ("email", "both@example.com")
    assert follow_up.status == Status.SENT
    assert smtp_sink.messages[0]["Subject"] == "Code"
    assert DeliveryLog.objects.get(message_id=original, event="fallback").detail.startswith("continued on email")
    # The outcome can never spawn a second fallback: the derived idempotency key holds.
    from delivery.services.follow_ups import message_fallback

    assert message_fallback(message=failed).id == follow_up.id
    assert Message.objects.filter(fallback_of_id=original).count() == 1


def test_no_address_for_the_first_channel_starts_on_the_next(admin_api, people, twilio, smtp_sink):
    response = admin_api.post("/api/v1/messages", {"channel": "sms", "recipient_id": "email-only", "subject": "Hi",
                                                   "body": "Hello", "fallback_channels": ["email"]}, format="json")
    assert response.status_code == 202
    assert response.json()["channel"] == "email" and response.json()["to"] == "mail@example.com"


def test_fallback_needs_a_directory_recipient_and_distinct_channels(admin_api):
    no_recipient = admin_api.post("/api/v1/messages", {"channel": "email", "to": "a@example.com", "subject": "s",
                                                       "body": "b", "fallback_channels": ["sms"]}, format="json")
    assert no_recipient.status_code == 400 and no_recipient.json()["code"] == "COMMS_VALIDATION_ERROR"
    twice = admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": "x", "subject": "s", "body": "b",
                                                "fallback_channels": ["email"]}, format="json")
    assert twice.status_code == 400
    unknown = admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": "x", "subject": "s", "body": "b",
                                                  "fallback_channels": ["pigeon"]}, format="json")
    assert unknown.json()["code"] == "COMMS_UNKNOWN_CHANNEL"
    assert Message.objects.count() == 0

"""What events change for later sends: suppression on hard bounce / complaint / repeated soft bounces,
ESP unsubscribes through preferences, STOP by SMS answered in TwiML."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.enums import Status
from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from preferences.models import ConsentRecord, Suppression, UserPreference
from preferences.services import is_suppressed
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db


def test_hard_bounce_suppresses_and_the_next_send_is_blocked(api, client, signer, smtp_sink, tenant):
    ses = signer("ses")
    first = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": "Hi",
                                          "body": "one"}, format="json").json()["id"]
    drain_all()
    # queued before the bounce arrives: the send-time check stops it
    queued = api.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": "Hi",
                                           "body": "two"}, format="json").json()["id"]
    sent = Message.objects.get(pk=first)
    assert sent.status == Status.SENT
    ses.sign(ses.envelope(ses.bounce_message(ref=sent.provider_ref, message_id=first))).send(client)
    webhooks_process_pending()
    assert is_suppressed(tenant=tenant, channel="email", address="ada@example.com")
    row = Suppression.objects.get()
    assert (row.reason, row.source, row.expires_at) == ("hard_bounce", "webhook:ses", None)
    drain_all()
    blocked = Message.objects.get(pk=queued)
    assert blocked.status == Status.BLOCKED
    assert len(smtp_sink.messages) == 1  # only the first one ever left
    later = api.post("/api/v1/messages", {"channel": "email", "to": "Ada@Example.com", "subject": "Hi",
                                          "body": "three"}, format="json")
    assert later.status_code == 422 and later.json()["code"] == "COMMS_SUPPRESSED"


def test_complaint_is_suppressed_under_its_own_reason(client, signer, sent_message, tenant):
    sg = signer("sendgrid")
    message = sent_message()
    sg.sign(sg.events(ref=message.provider_ref, event="spamreport")).send(client)
    webhooks_process_pending()
    assert Suppression.objects.get().reason == "complaint"
    message.refresh_from_db()
    assert message.status == Status.COMPLAINED


def test_three_soft_bounces_in_72h_suppress_temporarily(client, signer, sent_message, tenant):
    mg = signer("mailgun")
    for i in range(2):
        m = sent_message()
        mg.event(ref=m.provider_ref, event="failed", severity="temporary").send(client)
    webhooks_process_pending()
    assert not is_suppressed(tenant=tenant, channel="email", address="ada@example.com")
    m = sent_message()
    mg.event(ref=m.provider_ref, event="failed", severity="temporary").send(client)
    webhooks_process_pending()
    row = Suppression.objects.get()
    assert row.source == "webhook:mailgun:soft_bounce" and "3 soft bounces" in row.detail
    assert row.expires_at is not None and row.expires_at > timezone.now() + timedelta(days=6)
    assert is_suppressed(tenant=tenant, channel="email", address="ada@example.com")
    assert not is_suppressed(tenant=tenant, channel="email", address="ada@example.com",
                             now=timezone.now() + timedelta(days=8))  # temporary


def test_soft_bounces_spread_over_more_than_72h_do_not_suppress(client, signer, sent_message, tenant):
    mg = signer("mailgun")
    for i in range(3):
        m = sent_message()
        mg.event(ref=m.provider_ref, event="failed", severity="temporary").send(client)
        webhooks_process_pending()
        # age this bounce as if it happened four days earlier per step
        MessageEvent.objects.filter(message=m).update(timestamp=timezone.now() - timedelta(days=4 * (3 - i)))
    assert not Suppression.objects.exists()


def test_esp_unsubscribe_goes_through_preferences(client, signer, sent_message, tenant):
    sg = signer("sendgrid")
    recipient = Recipient.objects.create(tenant=tenant, external_id="u-42", email="ada@example.com")
    message = sent_message(recipient=recipient, category="marketing")
    sg.sign(sg.events(ref=message.provider_ref, event="unsubscribe")).send(client)
    webhooks_process_pending()
    pref = UserPreference.objects.get(recipient=recipient, channel="email", category="marketing")
    assert pref.enabled is False
    consent = ConsentRecord.objects.get(recipient=recipient)
    assert (consent.action, consent.source) == ("withdrawn", "webhook:sendgrid")
    assert MessageEvent.objects.get().event_type == "unsubscribed"


def test_inbound_stop_by_sms_answers_twiml_and_suppresses(client, signer, tenant):
    tw = signer("twilio")
    fields = {"MessageSid": "SM" + "b" * 32, "AccountSid": tw.sid, "From": "+14155550123", "To": "+15005550006",
              "Body": " stop ", "NumMedia": "0"}
    response = tw.form(fields, path="/webhooks/twilio/sms").send(client)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    assert b"<Response><Message>You are unsubscribed" in response.content
    assert is_suppressed(tenant=tenant, channel="sms", address="+14155550123")
    row = WebhookEvent.objects.get()
    assert (row.provider, row.state, row.signature_valid) == ("twilio_sms", "processed", True)
    # not a keyword: an empty TwiML answer, nothing changes
    other = tw.form({**fields, "MessageSid": "SM" + "c" * 32, "Body": "hello?"}, path="/webhooks/twilio/sms")
    assert other.send(client).content.endswith(b"<Response></Response>")


def test_inbound_sms_with_bad_signature_changes_nothing(client, signer, tenant):
    tw = signer("twilio")
    fields = {"MessageSid": "SM" + "d" * 32, "From": "+14155550123", "To": "+15005550006", "Body": "STOP"}
    response = tw.form(fields, path="/webhooks/twilio/sms", token="f" * 32).send(client)
    assert response.status_code == 401
    assert not Suppression.objects.exists()
    assert WebhookEvent.objects.get().state == "rejected"


def test_sendgrid_open_and_click_are_events_not_status(client, signer, sent_message):
    sg = signer("sendgrid")
    message = sent_message()
    events = json.loads(sg.events(ref=message.provider_ref, event="open")) + json.loads(
        sg.events(ref=message.provider_ref, event="click"))
    sg.sign(json.dumps(events)).send(client)
    webhooks_process_pending()
    message.refresh_from_db()
    assert message.status == Status.SENT
    click = MessageEvent.objects.get(event_type="clicked")
    assert click.link_url == "https://shop.example.com/orders/1"

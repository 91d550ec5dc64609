"""Inbound events and the consent ledger (issue 13, items 8 and 9): a STOP/START by SMS is linked to
every recipient holding the number and shows in their GDPR export, a redelivered inbound message
writes nothing twice, and a late soft bounce is not suppressed into the past."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.models import Recipient, Scope
from preferences.models import ConsentRecord, Suppression
from preferences.services import is_suppressed, send_decision, suppression_add
from webhooks.models import WebhookEvent
from webhooks.services import webhook_reprocess, webhooks_process_pending

pytestmark = pytest.mark.django_db

NUMBER = "+14155550123"
SHARED = "+15005550006"  # the number we send from (To of the inbound message)


def _inbound(tw, client, *, body: str, sid: str, to: str = SHARED):
    fields = {"MessageSid": sid, "AccountSid": tw.sid, "From": NUMBER, "To": to, "Body": body, "NumMedia": "0"}
    response = tw.form(fields, path="/webhooks/twilio/sms").send(client)
    assert response.status_code == 200, response.content
    return response


def _export(api, external_id: str) -> list[dict]:
    response = api.get(f"/api/v1/recipients/{external_id}/consent")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_stop_by_sms_shows_in_the_consent_export_of_every_recipient_with_that_number(
        api, client, signer, tenant, other_tenant):
    tw = signer("twilio")
    Recipient.objects.create(tenant=tenant, external_id="mum", phone=NUMBER)
    Recipient.objects.create(tenant=tenant, external_id="kid", phone=NUMBER)
    Recipient.objects.create(tenant=tenant, external_id="neighbour", phone="+14155550124")
    stranger = Recipient.objects.create(tenant=other_tenant, external_id="mum", phone=NUMBER)
    response = _inbound(tw, client, body="STOP", sid="SM" + "1" * 32)
    assert b"You are unsubscribed" in response.content
    for who in ("mum", "kid"):
        [row] = _export(api, who)
        assert (row["action"], row["channel"], row["source"]) == ("withdrawn", "sms", "sms_keyword")
    assert _export(api, "neighbour") == []
    # Another tenant's directory is not touched by a STOP to this tenant's number.
    assert not ConsentRecord.objects.filter(recipient_id=stranger.pk).exists()
    assert not ConsentRecord.objects.filter(tenant_id=tenant.pk, recipient__isnull=True).exists()


def test_the_same_message_sid_twice_writes_one_row_per_recipient(api, client, signer, tenant):
    tw = signer("twilio")
    Recipient.objects.create(tenant=tenant, external_id="mum", phone=NUMBER)
    sid = "SM" + "2" * 32
    first = _inbound(tw, client, body="STOP", sid=sid)
    again = _inbound(tw, client, body="STOP", sid=sid)  # Twilio retrying a request it got no answer to
    assert again.content == first.content  # the confirmation is answered again, nothing else happens
    assert WebhookEvent.objects.count() == 2  # both requests are kept raw for audit
    assert [r["action"] for r in _export(api, "mum")] == ["withdrawn"]
    assert ConsentRecord.objects.filter(tenant_id=tenant.pk).count() == 1


def test_a_late_copy_of_a_stop_does_not_undo_a_later_start(api, client, signer, tenant):
    tw = signer("twilio")
    Recipient.objects.create(tenant=tenant, external_id="mum", phone=NUMBER)
    stop_sid = "SM" + "3" * 32
    _inbound(tw, client, body="STOP", sid=stop_sid)
    response = _inbound(tw, client, body="START", sid="SM" + "4" * 32)
    assert b"<Message>" in response.content
    assert [r["action"] for r in _export(api, "mum")] == ["withdrawn", "granted"]
    assert not is_suppressed(tenant=tenant, channel="sms", address=NUMBER)
    # The admin re-processes the stored STOP (or Twilio redelivers it): it was applied already.
    stop_row = WebhookEvent.objects.filter(provider_event_id=stop_sid).get()
    webhook_reprocess(webhook_id=stop_row.pk)
    _inbound(tw, client, body="STOP", sid=stop_sid)
    assert [r["action"] for r in _export(api, "mum")] == ["withdrawn", "granted"]
    assert not is_suppressed(tenant=tenant, channel="sms", address=NUMBER)


def test_start_is_linked_to_every_recipient_with_that_number_and_grants_consent(api, client, signer, tenant):
    tw = signer("twilio")
    mum = Recipient.objects.create(tenant=tenant, external_id="mum", phone=NUMBER)
    Recipient.objects.create(tenant=tenant, external_id="kid", phone=NUMBER)
    sid = "SM" + "5" * 32
    _inbound(tw, client, body="Start", sid=sid)
    _inbound(tw, client, body="Start", sid=sid)
    for who in ("mum", "kid"):
        assert [(r["action"], r["source"]) for r in _export(api, who)] == [("granted", "sms_keyword")]
    # The grant is the express consent marketing SMS needs (TCPA), for the recipient and the bare number.
    assert send_decision(recipient=mum, channel="sms", category="marketing", address=NUMBER).code != "COMMS_NO_CONSENT"
    assert send_decision(recipient=None, tenant=tenant, channel="sms", category="marketing",
                         address=NUMBER).code != "COMMS_NO_CONSENT"


def test_a_number_shared_by_two_tenants_stops_in_both(api, client, signer, tenant, other_tenant, make_client):
    from delivery.models import ChannelProvider

    tw = signer("twilio")
    for owner in (tenant, other_tenant):
        ChannelProvider.objects.create(tenant=owner, channel="sms", name="twilio",
                                       provider_class="delivery.providers.twilio.TwilioProvider",
                                       options={"from_number": "+15005550009"})
    Recipient.objects.create(tenant=tenant, external_id="mum", phone=NUMBER)
    Recipient.objects.create(tenant=other_tenant, external_id="ma", phone=NUMBER)
    _inbound(tw, client, body="STOP", sid="SM" + "6" * 32, to="+15005550009")
    other_api = make_client(other_tenant, [Scope.MESSAGES_READ])
    assert [r["action"] for r in _export(api, "mum")] == ["withdrawn"]
    assert [r["action"] for r in _export(other_api, "ma")] == ["withdrawn"]
    assert is_suppressed(tenant=other_tenant, channel="sms", address=NUMBER)


def test_esp_unsubscribe_of_a_bare_address_is_recorded_for_its_recipients(api, client, signer, sent_message, tenant):
    sg = signer("sendgrid")
    Recipient.objects.create(tenant=tenant, external_id="ada", email="Ada@Example.com")
    message = sent_message(category="marketing")  # sent to the bare address, no recipient id
    body = sg.events(ref=message.provider_ref, event="unsubscribe", event_id="sg-unsub-1")
    sg.sign(body).send(client)
    sg.sign(body).send(client)  # redelivered
    webhooks_process_pending()
    assert is_suppressed(tenant=tenant, channel="email", address="ada@example.com")
    [row] = _export(api, "ada")
    assert (row["action"], row["source"], row["category"]) == ("withdrawn", "webhook:sendgrid", "marketing")


def test_a_late_soft_bounce_suppresses_from_now_and_keeps_the_provider_time(client, signer, sent_message, tenant,
                                                                             settings):
    """Three soft bounces that happened five days ago reach us now: the suppression runs its full
    duration from now (it used to expire two days before it was written)."""
    settings.COMMS_SOFT_BOUNCE_SUPPRESS_HOURS = 72
    sg = signer("sendgrid")
    then = timezone.now() - timedelta(days=5)
    for i in range(3):
        m = sent_message()
        # Signed now (the signature has a freshness window); the events themselves are five days old.
        sg.sign(sg.events(ref=m.provider_ref, event="bounce", bounce_kind="blocked", ts=then.timestamp() + i)
                ).send(client)
    webhooks_process_pending()
    row = Suppression.objects.get()
    before = timezone.now()
    assert before + timedelta(hours=71) < row.expires_at <= before + timedelta(hours=72, minutes=1)
    assert is_suppressed(tenant=tenant, channel="email", address="ada@example.com")
    assert row.event_at is not None and abs((row.event_at - (then + timedelta(seconds=2))).total_seconds()) < 2
    decision = send_decision(recipient=None, tenant=tenant, channel="email", category="marketing",
                             address="ada@example.com")
    assert decision.code == "COMMS_SUPPRESSED"


def test_hard_bounce_and_complaint_keep_the_provider_time(client, signer, sent_message, tenant):
    sg = signer("sendgrid")
    message = sent_message()
    then = timezone.now() - timedelta(hours=3)
    sg.sign(sg.events(ref=message.provider_ref, event="spamreport", ts=then.timestamp())).send(client)
    webhooks_process_pending()
    row = Suppression.objects.get()
    assert row.reason == "complaint" and row.expires_at is None
    assert abs((row.event_at - then).total_seconds()) < 2
    # Our own entries have no provider time.
    own = suppression_add(tenant=tenant, channel="email", address="bob@example.com", reason="manual", source="ops")
    assert own.event_at is None

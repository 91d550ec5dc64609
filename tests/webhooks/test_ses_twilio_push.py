"""SES through SNS (certificate host and topic allow-lists, confirmations), Twilio behind a proxy,
push feedback, and the asynchronous path through a real Celery worker."""

from __future__ import annotations

import json

import pytest

from comms.enums import Status
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.providers.ses import sns_host_allowed
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url,ok", [
    ("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
    ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
    ("http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", False),  # not TLS
    ("https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem", False),
    ("https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem", False),
    ("https://sns.eu-west-1.amazonaws.com@evil.example/cert.pem", False),
    ("https://s3.amazonaws.com/cert.pem", False),
])
def test_default_certificate_host_allow_list(url, ok):
    """Only sns.<region>.amazonaws.com is admitted by default (the tests widen it to their loopback host)."""
    assert sns_host_allowed(url) is ok


def test_ses_bounce_v2_signature_and_our_message_header(client, signer, sent_message):
    ses = signer("ses")
    message = sent_message(ref="0102018c-ses-id")
    env = ses.envelope(ses.bounce_message(ref="0102018c-other", message_id=str(message.id)), version="2")
    assert ses.sign(env).send(client).status_code == 200
    webhooks_process_pending()
    message.refresh_from_db()
    event = MessageEvent.objects.get()
    # matched through X-Comms-Message-Id even though the provider id differs
    assert (event.message_id, event.bounce_type, message.status) == (message.id, "hard", Status.BOUNCED)


def test_ses_certificate_off_aws_refused_by_default(client, signer, settings, sent_message):
    ses = signer("ses")
    settings.COMMS_SNS_HOST_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
    response = ses.case("valid", sent_message().provider_ref).send(client)
    assert response.status_code == 401
    row = WebhookEvent.objects.get()
    assert row.signature_error == "ses: certificate URL is not an Amazon SNS host"
    assert ses.server.hits == []  # the certificate was never even fetched


def test_ses_topic_not_allowed(client, signer, sent_message):
    ses = signer("ses")
    env = ses.envelope(ses.bounce_message(ref=sent_message().provider_ref),
                       topic="arn:aws:sns:eu-west-1:999999999999:someone-else")
    assert ses.sign(env).send(client).status_code == 401
    assert "COMMS_SES_TOPIC_ARNS" in WebhookEvent.objects.get().signature_error


def test_ses_subscription_confirmation_visits_subscribe_url(client, signer):
    ses = signer("ses")
    url = f"{ses.server.url}/?Action=ConfirmSubscription&TopicArn={ses.topic}&Token=abc"
    env = ses.envelope("You have chosen to subscribe to the topic.", sns_type="SubscriptionConfirmation",
                       extra={"SubscribeURL": url, "Token": "abc"})
    assert ses.sign(env).send(client).status_code == 200
    webhooks_process_pending()
    row = WebhookEvent.objects.get()
    assert row.state == "processed" and row.error == "subscription confirmed"
    assert any("ConfirmSubscription" in hit for hit in ses.server.hits)


def test_ses_multiple_recipients_are_separate_events(client, signer, sent_message):
    ses = signer("ses")
    a = sent_message(ref="multi-1", address="ada@example.com")
    message = json.loads(ses.bounce_message(ref="multi-1"))
    message["bounce"]["bouncedRecipients"].append({"emailAddress": "bob@example.com", "status": "5.1.1"})
    ses.sign(ses.envelope(json.dumps(message))).send(client)
    webhooks_process_pending()
    assert sorted(MessageEvent.objects.filter(message=a).values_list("recipient_address", flat=True)) == [
        "ada@example.com", "bob@example.com"]


def test_twilio_status_behind_a_tls_proxy(client, signer, sent_message, settings):
    """Twilio signs https://public-host/...; we see http://testserver/... unless we trust the proxy."""
    tw = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123", ref="SM" + "a" * 32)
    public = "https://notify.example.com/webhooks/twilio/status"
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "notify.example.com"}
    req = tw.status(sid=message.provider_ref, url=public, headers=proxied)
    settings.COMMS_TRUST_FORWARDED = False
    assert req.send(client).status_code == 401  # without trusting the proxy the URL differs
    settings.COMMS_TRUST_FORWARDED = True
    assert req.send(client).status_code == 200
    webhooks_process_pending()
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert WebhookEvent.objects.filter(signature_valid=True).get().url == public


def test_twilio_forwarded_headers_ignored_unless_trusted(client, signer, sent_message, settings):
    """A client cannot pick the signed URL by sending X-Forwarded-* itself when no proxy is trusted."""
    tw = signer("twilio")
    settings.COMMS_TRUST_FORWARDED = False
    req = tw.status(sid="SMx", url="https://attacker.example/webhooks/twilio/status",
                    headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example"})
    assert req.send(client).status_code == 401


@pytest.mark.parametrize("code,kind,bounce,status", [
    ("30005", "bounced", "hard", Status.BOUNCED),
    ("30003", "bounced", "soft", Status.SENT),
    ("30007", "failed", "", Status.FAILED),
])
def test_twilio_failure_codes(client, signer, sent_message, code, kind, bounce, status):
    tw = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123", ref="SM" + code)
    tw.status(sid=message.provider_ref, status="undelivered", error_code=code).send(client)
    webhooks_process_pending()
    event = MessageEvent.objects.get()
    message.refresh_from_db()
    assert (event.event_type, event.bounce_type, message.status) == (kind, bounce, status)


def test_push_unknown_reason_keeps_device(client, signer, tenant):
    from comms.models import Device, Recipient

    push = signer("push")
    recipient = Recipient.objects.create(tenant=tenant, external_id="u1")
    Device.objects.create(tenant=tenant, recipient=recipient, token="tok-9", platform="ios")
    push.feedback("tok-9", reason="QUOTA_EXCEEDED").send(client)
    webhooks_process_pending()
    assert WebhookEvent.objects.get().state == "flagged"
    assert Device.objects.get(token="tok-9").disabled_at is None



"""The provider registry and the base view's contract (issue 15, move 4).

A provider is one class that declares everything (name, URL, verify_* steps, header allow-list,
event-type map with UNKNOWN for anything unlisted, check_shape, parse) and one registry entry; the
base view runs every verify_* step in the class hierarchy, so a subclass cannot drop one.
"""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory
from django.urls import reverse

from tracking.models import EventType
from webhooks.intake import NO_EVENT, IntakeView, SignatureInvalid
from webhooks.models import WebhookEvent
from webhooks.providers.esp import PostmarkIntake
from webhooks.registry import PROVIDERS, STORED_HEADERS, provider_for

# What every stored row kept before the registry existed (the old intake.AUDIT_HEADERS).
HEADERS_BEFORE = {
    "Content-Type", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
    "X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp", "X-Twilio-Signature",
    "X-Amz-Sns-Message-Type", "X-Amz-Sns-Message-Id", "X-Amz-Sns-Topic-Arn", "X-Amz-Sns-Subscription-Arn",
    "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "X-Postmark-Server-Token",
}

# Issue 18: Postal signs with these (kept for the audit); Bandwidth and Vonage add none.
POSTAL_HEADERS = {"X-Postal-Signature", "X-Postal-Signature-256", "X-Postal-Signature-KID"}


def _declared_by_provider(cls: type, attr: str) -> bool:
    """True when a class of the provider (not the shared base) declares `attr` itself."""
    return any(attr in vars(k) for k in cls.__mro__ if issubclass(k, IntakeView) and k is not IntakeView)


# --- (a) every registered provider declares every part ---------------------------------------------------

@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_every_registered_provider_declares_all_its_parts(cls):
    assert cls.name and provider_for(cls.name) is cls
    assert cls.url and reverse(f"webhook-{cls.url.replace('/', '-')}") == f"/webhooks/{cls.url}"
    # event map: non-empty, values are our types (or NO_EVENT), anything unlisted is UNKNOWN
    assert cls.event_types and _declared_by_provider(cls, "event_types")
    assert all(v is NO_EVENT or v in EventType.values for v in cls.event_types.values())
    assert cls.event_type("never-a-real-type-7f3a") == EventType.UNKNOWN
    assert cls.parse.__func__ is not IntakeView.parse.__func__
    assert cls.check_shape is not IntakeView.check_shape
    assert _declared_by_provider(cls, "audit_headers")
    assert set(IntakeView.audit_headers) <= set(cls.header_allow_list())
    assert "Authorization" not in cls.header_allow_list()  # it carries a secret
    own_steps = [s for s in cls.signature_steps() if s is not IntakeView.verify_configured]
    assert own_steps, f"{cls.__name__} declares no signature check"


def test_names_and_urls_are_unique_and_rows_keep_the_same_headers_as_before():
    assert len({c.name for c in PROVIDERS}) == len({c.url for c in PROVIDERS}) == len(PROVIDERS)
    assert set(STORED_HEADERS) == HEADERS_BEFORE | POSTAL_HEADERS


def test_body_caps_are_declared_by_the_providers_and_settings_still_override(settings):
    """The caps once listed in settings (SendGrid 8 MB, SES 300 KB, Twilio and push 64 KB, others 1 MB)."""
    before = {"sendgrid": 8 * 1024 * 1024, "mailgun": 1024 * 1024, "postmark": 1024 * 1024, "ses": 300 * 1024,
              "twilio": 64 * 1024, "twilio_sms": 64 * 1024, "push": 64 * 1024,
              # Inbound email (conversations): ESPs forward mails with attachments up to ~25 MB.
              "sendgrid_inbound": 26 * 1024 * 1024, "mailgun_inbound": 26 * 1024 * 1024,
              "postmark_inbound": 26 * 1024 * 1024, "ses_inbound": 300 * 1024}
    before |= {"twilio_voice": 64 * 1024, "twilio_voice_gather": 64 * 1024}  # voice: Twilio's form fields
    caps = {c.name: c().body_limit() for c in PROVIDERS}
    assert {name: caps[name] for name in before} == before  # providers added later declare their own:
    assert {name: caps[name] for name in ("postal", "bandwidth", "vonage", "vonage_sms")} == {
        "postal": 512 * 1024, "bandwidth": 256 * 1024, "vonage": 64 * 1024, "vonage_sms": 64 * 1024}
    settings.COMMS_WEBHOOK_MAX_BYTES = {"default": 10, "ses": 5}
    assert provider_for("ses")().body_limit() == 5 and provider_for("mailgun")().body_limit() == 10
    assert provider_for("sendgrid")().body_limit() == 8 * 1024 * 1024


def test_a_row_of_an_unregistered_provider_is_flagged_not_failed(db):
    from webhooks.services import webhook_process

    row = WebhookEvent.objects.create(provider="carrier-pigeon", signature_valid=True, body="{}", payload={})
    assert provider_for("carrier-pigeon") is None
    assert webhook_process(webhook_id=row.pk).state == "flagged"
    row.refresh_from_db()
    assert row.error == "no parser for provider 'carrier-pigeon'"


# --- (b) a subclass's own verify_* step never replaces the base's signature steps -------------------------

CALLS: list[str] = []


class StricterPostmark(PostmarkIntake):
    """A throwaway provider: Postmark plus one check of its own, and an attempt to 'override' anymail's
    basic-auth step by redefining it under the same name without calling super()."""

    def verify_anymail(self, request, body, payload):
        CALLS.append("own verify_anymail")

    def verify_recipient_domain(self, request, body, payload):
        CALLS.append("verify_recipient_domain")
        if not str(payload.get("Recipient", "")).endswith("@example.com"):
            raise SignatureInvalid("stricter: recipient outside example.com")


def _post(view_class, req):
    request = RequestFactory().generic("POST", req.path, req.body, content_type=req.content_type,
                                       **req.meta())
    return view_class.as_view()(request)


def test_subclass_steps_run_after_the_base_signature_steps(db, signer, sent_message):
    s = signer("postmark")
    ref = sent_message().provider_ref
    assert [f.__qualname__ for f in StricterPostmark.signature_steps()] == [
        "IntakeView.verify_configured", "AnymailIntake.verify_anymail", "StricterPostmark.verify_anymail",
        "StricterPostmark.verify_recipient_domain"]

    CALLS.clear()
    response = _post(StricterPostmark, s.delivery(ref=ref, address="ada@example.com"))
    assert response.status_code == 200, response.content
    assert CALLS == ["own verify_anymail", "verify_recipient_domain"]

    CALLS.clear()  # the subclass's own step refuses: 401, stored as rejected with its reason
    response = _post(StricterPostmark, s.delivery(ref=ref, address="eve@elsewhere.test"))
    assert response.status_code == 401 and json.loads(response.content)["code"] == "COMMS_WEBHOOK_SIGNATURE"
    row = WebhookEvent.objects.latest("pk")
    assert row.state == "rejected" and row.signature_error == "stricter: recipient outside example.com"


@pytest.mark.parametrize("case", ["wrong_key", "missing_header"])
def test_redefining_a_base_step_does_not_skip_it(db, signer, sent_message, case):
    """The subclass's verify_anymail does nothing, yet wrong basic auth is still refused by the base's."""
    s = signer("postmark")
    CALLS.clear()
    response = _post(StricterPostmark, s.case(case, sent_message().provider_ref))
    assert response.status_code == 401 and json.loads(response.content)["code"] == "COMMS_WEBHOOK_SIGNATURE"
    assert WebhookEvent.objects.get().state == "rejected"
    assert CALLS == []  # base steps run first: the subclass's steps never saw the forged request


def test_missing_secret_is_refused_before_any_subclass_step(db, signer, sent_message, settings):
    s = signer("postmark")
    req = s.delivery(ref=sent_message().provider_ref)
    settings.COMMS_POSTMARK_WEBHOOK_AUTH = ""
    CALLS.clear()
    assert _post(StricterPostmark, req).status_code == 401
    assert WebhookEvent.objects.get().signature_error == (
        "postmark: no basic auth configured (COMMS_POSTMARK_WEBHOOK_AUTH)")
    assert CALLS == []


def test_overriding_verify_itself_is_refused_at_class_creation():
    with pytest.raises(TypeError, match="verify_<step>"):
        class Lax(PostmarkIntake):  # noqa: F841 - the class statement is what fails
            def verify(self, request, body, payload):
                return None


def test_a_provider_without_a_signature_step_refuses_everything(db, signer):
    class Unsigned(IntakeView):
        name, url, event_types = "unsigned", "unsigned", {"x": EventType.DELIVERED}

        def check_shape(self, payload):
            return None

    s = signer("postmark")
    response = _post(Unsigned, s.sign('{"RecordType": "Delivery"}'))
    assert response.status_code == 401
    row = WebhookEvent.objects.get()
    assert row.state == "rejected" and row.signature_error == "unsigned: no signature check declared"


# --- (c) an unknown raw type maps to UNKNOWN and keeps its raw payload ------------------------------------

def test_unknown_sendgrid_type_is_unknown_and_keeps_its_raw_event(client, signer, sent_message):
    sg = signer("sendgrid")
    ref = sent_message().provider_ref
    events = json.loads(sg.events(ref=ref))
    odd = {**events[0], "event": "teleported", "sg_event_id": "sg-odd", "planet": "Mars"}
    assert sg.sign(json.dumps([odd])).send(client).status_code == 200
    row = WebhookEvent.objects.get()
    [event] = provider_for("sendgrid").normalise(row)
    assert event.event_type == EventType.UNKNOWN and event.raw_type == "teleported"
    assert event.raw == odd  # the provider's own event, as it was posted


def test_unknown_twilio_status_is_unknown_and_keeps_its_raw_fields(client, signer, sent_message):
    tw = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123", ref="SM" + "a" * 32)
    assert tw.status(sid=message.provider_ref, status="teleported").send(client).status_code == 200
    row = WebhookEvent.objects.get()
    [event] = provider_for("twilio").normalise(row)
    assert event.event_type == EventType.UNKNOWN and event.raw_type == "teleported"
    assert event.raw == row.payload and event.raw["MessageStatus"] == "teleported"


def test_known_events_keep_their_raw_payload_too(client, signer, sent_message):
    tw = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123", ref="SM" + "b" * 32)
    req = tw.status(sid=message.provider_ref, status="undelivered", error_code="30005")
    assert req.send(client).status_code == 200
    [event] = provider_for("twilio").normalise(WebhookEvent.objects.get())
    assert event.event_type == EventType.BOUNCED and event.raw["ErrorCode"] == "30005"

"""Voice through the send path: the API's early consent refusal, calls outside calling hours deferred
(never lost) and placed when the window opens, validation of voice requests, and the TwiML limit."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from comms.devserver.standins.twilio import TwilioStandIn
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all, housekeeping_run
from preferences.services import consent_record

pytestmark = pytest.mark.django_db
SID, TOKEN, TO = "AC" + "4" * 32, "voice-policy-token", "+14155550123"  # +1 415: Los Angeles
LA = zoneinfo.ZoneInfo("America/Los_Angeles")


@pytest.fixture
def voice():
    stand_in = TwilioStandIn(SID, TOKEN, callback_delay=0)
    row = ChannelProvider(channel="voice", name="twilio_voice",
                          provider_class="delivery.providers.twilio_voice.TwilioVoiceProvider", is_primary=True,
                          options={"from_number": "+15005550006", "base_url": stand_in.url,
                                   "callback_base": "http://127.0.0.1:9"})  # nobody listens: callbacks are dropped
    row.credentials = {"account_sid": SID, "auth_token": TOKEN}
    row.save()
    yield stand_in
    stand_in.close()


def _post(api, **extra):
    return api.post("/api/v1/messages", {"channel": "voice", "to": TO, "body": "Flash sale today.", **extra},
                    format="json")


def test_marketing_call_without_consent_is_refused_with_its_code(api, voice):
    response = _post(api, category="marketing")
    assert response.status_code == 422
    assert response.json()["code"] == "COMMS_NO_CONSENT"
    assert voice.calls == []


def test_a_call_outside_calling_hours_is_deferred_then_placed(api, voice, tenant, settings):
    settings.COMMS_QUIET_HOURS_JITTER = 0
    consent_record(tenant=tenant, address=TO, channel="voice", action="granted", source="test",
                   consent_text="Call me with offers")
    late = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(22, 30), tzinfo=LA)
    response = _post(api, category="marketing")
    assert response.status_code == 202, response.content
    message = Message.objects.get(id=response.json()["id"])
    Message.objects.filter(pk=message.pk).update(next_attempt_at=late, created_at=late)
    assert drain_all(clock=lambda: late).deferred == 1
    message.refresh_from_db()
    assert (message.status, message.failure_code, message.attempt_count) == (Status.DEFERRED, "COMMS_QUIET_HOURS", 0)
    morning = message.next_attempt_at
    assert (morning.astimezone(LA).hour, morning.astimezone(LA).minute) == (8, 1)
    assert voice.calls == []
    assert housekeeping_run(now=morning).promoted == 1
    assert drain_all(clock=lambda: morning).sent == 1
    assert [c["To"] for c in voice.calls] == [TO]


@pytest.mark.parametrize("payload, code", [
    ({"to": "+1415"}, "COMMS_INVALID_ADDRESS"),
    ({"to": "ada@example.com"}, "COMMS_INVALID_ADDRESS"),
    ({"body": "x" * 3001}, "COMMS_CONTENT_TOO_LARGE"),
    ({"body": ""}, "COMMS_VALIDATION_ERROR"),
])
def test_bad_voice_requests_are_typed_errors(api, voice, payload, code):
    response = _post(api, **payload)
    assert response.status_code in (400, 413, 422), response.content
    assert response.json()["code"] == code


def test_voice_without_a_provider_is_unavailable(api):
    response = _post(api)
    assert response.status_code == 422 and response.json()["code"] == "COMMS_CHANNEL_UNAVAILABLE"


def test_a_call_whose_twiml_is_over_twilios_limit_fails_permanently(api, voice):
    # 3,000 characters of '&' become 15,000 once escaped (&amp;): over Twilio's 4,000 for Twiml.
    message_id = _post(api, body="&" * 3000).json()["id"]
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "21236")
    assert voice.calls == []


def test_an_invalid_number_from_twilio_is_permanent(api, voice):
    voice.failures[TO] = [(400, 21211, "Invalid 'To' Phone Number")]
    message_id = _post(api).json()["id"]
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "21211")


def test_template_preview_shows_the_spoken_text(admin_api, tenant):
    response = admin_api.post("/api/v1/templates", {
        "template_key": "call", "name": "Call", "channels": ["voice", "sms"],
        "variables_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
        "sample_variables": {"name": "Ada <b>"},
        "locales": [{"locale": "en-US", "sms_text": "Hi {{name}}", "voice_text": "Hello   {{name}},\nyour order."}],
    }, format="json")
    assert response.status_code == 201, response.content
    preview = admin_api.post("/api/v1/templates/call/preview", {}, format="json")
    assert preview.status_code == 200, preview.content
    assert preview.json()["channels"]["voice"] == {"problems": [], "text": "Hello Ada <b>, your order."}


def test_failover_to_a_second_voice_provider_and_rate_limit(api, voice, settings):
    """Item 7: voice rows take part in failover chains and per-provider rate limits like any channel."""
    backup = TwilioStandIn(SID, TOKEN, callback_delay=0)
    try:
        row = ChannelProvider(channel="voice", name="twilio_voice_backup",
                              provider_class="delivery.providers.twilio_voice.TwilioVoiceProvider", order=2,
                              options={"from_number": "+15005550006", "base_url": backup.url,
                                       "callback_base": "http://127.0.0.1:9"})
        row.credentials = {"account_sid": SID, "auth_token": TOKEN}
        row.save()
        voice.failures[TO] = [(503, None, "Service Unavailable")]  # the primary certainly did not dial
        first = _post(api).json()["id"]
        drain_all()
        message = Message.objects.get(id=first)
        assert (message.status, message.provider) == (Status.SENT, "twilio_voice_backup")
        assert voice.calls == [] and [c["To"] for c in backup.calls] == [TO]
    finally:
        backup.close()
    settings.COMMS_SEND_CONCURRENCY = 8
    ChannelProvider.objects.filter(name="twilio_voice_backup").delete()
    ChannelProvider.objects.filter(name="twilio_voice").update(rate_limit=1)  # Twilio's default: 1 call/s
    from delivery import routing

    routing.clear_cache()
    ids = [_post(api, to=f"+1415555{n:04d}").json()["id"] for n in range(200, 204)]
    stats = drain_all()
    assert stats.sent + stats.deferred == 4 and 1 <= stats.sent <= 2
    assert Message.objects.filter(id__in=ids, status=Status.QUEUED, attempt_count=0).count() == stats.deferred


def test_a_refused_call_falls_back_to_sms(admin_api, voice, tenant):
    from comms.services import recipient_upsert

    sms = TwilioStandIn(SID, TOKEN, callback_delay=0)
    try:
        row = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                              is_primary=True, options={"from_number": "+15005550006", "base_url": sms.url})
        row.credentials = {"account_sid": SID, "auth_token": TOKEN}
        row.save()
        recipient_upsert(tenant=tenant, external_id="caller", data={"phone": TO})
        voice.failures[TO] = [(400, 21215, "Geo permission configuration is not permitting call")]
        response = admin_api.post("/api/v1/messages", {"channel": "voice", "recipient_id": "caller",
                                                       "body": "Your code is 1 2 3 4", "fallback_channels": ["sms"]},
                                  format="json")
        assert response.status_code == 202, response.content
        drain_all()
        call = Message.objects.get(id=response.json()["id"])
        assert (call.status, call.failure_code) == (Status.FAILED, "21215")
        follow = Message.objects.get(fallback_of_id=call.id)
        assert (follow.channel, follow.status) == ("sms", Status.SENT)
        assert sms.messages[0]["Body"] == "Your code is 1 2 3 4"
    finally:
        sms.close()

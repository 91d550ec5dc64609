"""The voice intakes' parsers and the voice channel's language table, without the network: every
documented CallStatus and AnsweredBy, malformed bodies, and fuzzed form fields."""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from delivery.channels.voice import call_options, voice_for
from tracking.models import EventType
from webhooks.intake import Malformed, parse_payload
from webhooks.models import WebhookEvent
from webhooks.providers.twilio_voice import TwilioVoiceGatherIntake, TwilioVoiceStatusIntake


def _row(fields: dict, provider: str = "twilio_voice") -> WebhookEvent:
    body = urlencode(fields, doseq=True)
    return WebhookEvent(provider=provider, content_type="application/x-www-form-urlencoded", headers={}, body=body,
                        payload=parse_payload(body.encode(), "application/x-www-form-urlencoded"),
                        received_at=timezone.now())


@pytest.mark.parametrize("status, answered_by, kind, extra", [
    ("completed", "human", EventType.DELIVERED, {"answered_by": "human"}),
    ("completed", "", EventType.DELIVERED, {}),
    ("completed", "machine_end_silence", EventType.DELIVERED, {"voicemail": True}),
    ("completed", "fax", EventType.FAILED, {"answered_by": "fax"}),
    ("busy", "", EventType.FAILED, {"transient": True}),
    ("no-answer", "", EventType.FAILED, {"transient": True}),
    ("failed", "", EventType.FAILED, {}),
    ("canceled", "", EventType.FAILED, {}),
])
def test_every_final_call_status_maps_to_one_event(status, answered_by, kind, extra):
    fields = {"CallSid": "CA1", "CallStatus": status, "To": "+14155550123", "CallDuration": "3"}
    if answered_by:
        fields["AnsweredBy"] = answered_by
    [event] = TwilioVoiceStatusIntake.parse(_row(fields))
    assert (event.event_type, event.provider_ref, event.event_id) == (kind, "CA1", f"CA1:{status}")
    assert extra.items() <= event.data.items() and event.data["call_status"] == status


@pytest.mark.parametrize("status", ["queued", "initiated", "ringing", "in-progress"])
def test_progress_records_nothing(status):
    assert TwilioVoiceStatusIntake.parse(_row({"CallSid": "CA1", "CallStatus": status})) == []


def test_an_unknown_status_is_kept_as_unknown_and_a_failed_call_names_its_error():
    [unknown] = TwilioVoiceStatusIntake.parse(_row({"CallSid": "CA1", "CallStatus": "teleported"}))
    assert unknown.event_type == EventType.UNKNOWN
    [failed] = TwilioVoiceStatusIntake.parse(_row({"CallSid": "CA1", "CallStatus": "failed", "ErrorCode": "13227"}))
    assert failed.reason == "call failed (Twilio error 13227)"


@pytest.mark.parametrize("payload", [[], "x", {"CallSid": "CA1"}, {"CallStatus": "completed"},
                                     {"CallSid": ["CA1", "CA2"], "CallStatus": "completed"}])
def test_status_shape_is_checked(payload):
    with pytest.raises(Malformed):
        TwilioVoiceStatusIntake().check_shape(payload)


def test_gather_parse_and_shape():
    [event] = TwilioVoiceGatherIntake.parse(_row({"CallSid": "CA9", "Digits": "1"}, "twilio_voice_gather"))
    assert (event.event_type, event.data, event.event_id) == (EventType.GATHERED, {"digits": "1"}, "CA9:gather")
    with pytest.raises(Malformed):
        TwilioVoiceGatherIntake().check_shape({"CallSid": "CA9", "Digits": ["1", "2"]})


@pytest.mark.parametrize("locale, expected", [
    ("fr-FR", ("fr-FR", "Polly.Lea-Neural")), ("fr_CA", ("fr-CA", "Polly.Gabrielle-Neural")),
    ("fr-BE", ("fr-FR", "Polly.Lea-Neural")), ("es", ("es-ES", "Polly.Lucia-Neural")),
    ("ES-mx", ("es-MX", "Polly.Mia-Neural")), ("", ("en-US", "Polly.Joanna-Neural")),
    ("xx-YY", ("en-US", "Polly.Joanna-Neural")), ("de-DE", ("de-DE", "Polly.Vicki-Neural")),
])
def test_language_and_voice_come_from_the_locale(locale, expected):
    assert voice_for(locale) == expected


@pytest.mark.parametrize("metadata, expected", [
    (None, {"gather": "", "digits": 1, "voicemail": True}),
    ({"voice": {"gather": "Press 1"}}, {"gather": "Press 1", "digits": 1, "voicemail": True}),
    ({"voice": {"gather": {"prompt": "Enter  the\\ncode", "digits": 4}, "voicemail": False}},
     {"gather": "Enter the\\ncode", "digits": 4, "voicemail": False}),
    ({"voice": {"gather": {"prompt": "x", "digits": 99}}}, {"gather": "x", "digits": 1, "voicemail": True}),
    ({"voice": {"gather": {"prompt": "x", "digits": True}}}, {"gather": "x", "digits": 1, "voicemail": True}),
    ({"voice": "nonsense"}, {"gather": "", "digits": 1, "voicemail": True}),
])
def test_call_options_drop_what_is_malformed(metadata, expected):
    assert call_options(metadata) == expected


FIELD = st.text(max_size=20) | st.lists(st.text(max_size=5), min_size=2, max_size=3)


@hsettings(max_examples=int(os.environ.get("COMMS_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
           suppress_health_check=list(HealthCheck))
@given(fields=st.dictionaries(st.sampled_from(["CallSid", "CallStatus", "AnsweredBy", "CallDuration", "ErrorCode",
                                                "Digits", "To", "x"]), FIELD, max_size=6))
def test_voice_parsers_never_crash(fields):
    for intake in (TwilioVoiceStatusIntake, TwilioVoiceGatherIntake):
        try:
            events = intake.normalise(_row(fields, intake.name))
        except Malformed:
            continue
        assert isinstance(events, list)

"""Twilio voice: call status callbacks and the confirmation digits of a ``<Gather>``.

Both are signed exactly like Twilio's SMS callbacks (``TwilioIntakeBase.verify_signature``: the SDK's
RequestValidator over the public URL — query string included, e.g. the Gather action's ``?lang=`` —
and the sorted POST fields, HMAC-SHA1 with the account's auth token).

Status → our status (documented in docs/api.md, "Voice"):

* ``completed`` → ``delivered``: the call was answered and the text spoken. With answering-machine
  detection, ``AnsweredBy`` tells a person (``human``) from a voicemail drop (``machine_end_beep``,
  ``machine_end_silence``, ``machine_end_other``: the text was left after the greeting); both are
  kept on the event. ``fax`` → ``failed`` (nothing heard it).
* ``busy`` and ``no-answer`` → ``failed`` with the status as the code and ``data.transient = true``.
  They are not re-dialled automatically: a repeated robocall is a new call that the sender decides
  on (TCPA call-frequency complaints, the recipient's own choice not to pick up); the sender sees the
  code and may send again (or let ``fallback_channels`` carry the message next time).
* ``failed`` → ``failed`` (Twilio could not place the call: invalid or unreachable number);
  ``canceled`` → ``failed`` (the call was cancelled before it was answered).
* ``queued``, ``initiated``, ``ringing``, ``in-progress``: progress, no event (the raw row is kept).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.http import HttpResponse
from twilio.twiml.voice_response import VoiceResponse

from delivery.channels.voice import thanks
from tracking.models import EventType
from tracking.normalised import NormalisedEvent
from webhooks.intake import NO_EVENT, require
from webhooks.models import WebhookEvent
from webhooks.providers.twilio import TwilioIntakeBase

VOICEMAIL = {"machine_end_beep", "machine_end_silence", "machine_end_other", "machine_start"}
NOT_ANSWERED = {"busy": "the line was busy", "no-answer": "nobody answered"}


def _fields(webhook: WebhookEvent) -> dict:
    return webhook.payload if isinstance(webhook.payload, dict) else {}


class TwilioVoiceStatusIntake(TwilioIntakeBase):
    """Call progress (the StatusCallback given when the call was placed)."""

    name, url = "twilio_voice", "twilio/voice"
    # CallStatus values (twilio.com/docs/voice/api/call-resource#call-status-values).
    event_types = {
        "completed": EventType.DELIVERED, "busy": EventType.FAILED, "no-answer": EventType.FAILED,
        "failed": EventType.FAILED, "canceled": EventType.FAILED,
        "queued": NO_EVENT, "initiated": NO_EVENT, "ringing": NO_EVENT, "in-progress": NO_EVENT,
    }

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict), "twilio_voice: the body is not a set of fields")
        require(isinstance(payload.get("CallSid"), str) and isinstance(payload.get("CallStatus"), str),
                "twilio_voice: a call status callback needs one CallSid and one CallStatus")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        status = str(payload.get("CallStatus", ""))
        return status, f"{payload.get('CallSid', '')}:{status}"

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        p = _fields(webhook)
        status, sid = str(p.get("CallStatus", "")), str(p.get("CallSid", ""))
        kind = cls.event_type(status)
        if kind is NO_EVENT:
            return []
        answered_by = str(p.get("AnsweredBy") or "")
        data: dict[str, Any] = {"call_status": status}
        if answered_by:
            data["answered_by"] = answered_by
        if p.get("CallDuration"):
            data["duration_seconds"] = str(p["CallDuration"])
        reason = ""
        if status == "completed" and answered_by in VOICEMAIL:
            data["voicemail"] = True
            reason = "voicemail left after the greeting"
        elif status == "completed" and answered_by == "fax":
            kind, reason = EventType.FAILED, "a fax machine answered"
        elif status in NOT_ANSWERED:
            data["transient"] = True
            reason = NOT_ANSWERED[status]
        elif kind == EventType.FAILED:
            reason = f"call {status}" + (f" (Twilio error {p['ErrorCode']})" if p.get("ErrorCode") else "")
        return [NormalisedEvent(provider=cls.name, event_type=kind, raw_type=status, event_id=f"{sid}:{status}",
                                provider_ref=sid, recipient=str(p.get("To", "")), timestamp=webhook.received_at,
                                reason=reason, data=data, raw=webhook.payload)]


class TwilioVoiceGatherIntake(TwilioIntakeBase):
    """The Gather action: the keys the recipient pressed, answered at once with TwiML (the call is
    waiting for it) and recorded as a ``gathered`` event on the message."""

    name, url = "twilio_voice_gather", "twilio/voice/gather"
    event_types = {"gather": EventType.GATHERED}

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict), "twilio_voice_gather: the body is not a set of fields")
        require(isinstance(payload.get("CallSid"), str) and isinstance(payload.get("Digits", ""), str),
                "twilio_voice_gather: a Gather action needs one CallSid and one Digits")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        return "gather", f"{payload.get('CallSid', '')}:gather"

    def after_store(self, row: WebhookEvent) -> HttpResponse:
        super().after_store(row)  # processed like every other row (task on commit, the sweep behind it)
        language = parse_qs(urlsplit(row.url).query).get("lang", ["en-US"])[0][:35]
        response = VoiceResponse()
        response.say(thanks(language), language=language)  # escaped like every <Say>
        response.hangup()
        return HttpResponse(str(response), content_type="text/xml; charset=utf-8")

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        p = _fields(webhook)
        sid, digits = str(p.get("CallSid", "")), str(p.get("Digits", ""))
        # One Gather per call: a retried action request is the same event, not a second answer.
        return [NormalisedEvent(provider=cls.name, event_type=EventType.GATHERED, raw_type="gather",
                                event_id=f"{sid}:gather", provider_ref=sid, recipient=str(p.get("To", "")),
                                timestamp=webhook.received_at, reason=f"pressed {digits}" if digits else "no key",
                                data={"digits": digits[:32]}, raw=webhook.payload)]

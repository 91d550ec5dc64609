"""Bandwidth messaging callbacks: delivery receipts and inbound SMS (STOP/START/HELP).

Bandwidth posts a JSON array of events to the messaging application's callback URL
(dev.bandwidth.com/docs/messaging/webhooks): ``message-delivered``, ``message-failed`` (with
``errorCode``), ``message-sending`` (MMS progress) and ``message-received`` (an inbound text). Bandwidth
does not sign callbacks; it authenticates them with the HTTP basic auth configured on the application
(callbackUser/callbackPassword), so that is what we check, in constant time, against
``COMMS_BANDWIDTH_WEBHOOK_AUTH`` and the ``callback_auth`` credential of Bandwidth ChannelProvider rows.
Without any configured credential every request is refused. Callbacks carry no signed timestamp:
replays are harmless because each event is applied once (its message id and type are its event id).

Inbound keywords go through the same service as Twilio's (webhooks.providers.sms_keywords); the
confirmation text is not sent back here: Bandwidth takes no reply in the callback's answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from delivery import selectors as delivery_selectors
from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from webhooks.intake import NO_EVENT, Handled, IntakeView, SignatureInvalid, require
from webhooks.models import WebhookEvent
from webhooks.providers.sms_keywords import keyword_apply

PROVIDER_CLASS = "bandwidth.BandwidthProvider"
# Bandwidth messaging error codes (dev.bandwidth.com/docs/messaging/errors): the number cannot take SMS
# at all (suppress it), the recipient opted out at the carrier, or a handset that is off (a soft bounce).
HARD_CODES = {"4720", "4721", "4730", "4740"}
OPTED_OUT_CODES = {"4775"}
SOFT_CODES = {"4702", "4711", "5600", "5610", "5620", "9902"}


def callback_credentials() -> list[str]:
    """Every configured "user:password": settings first, then Bandwidth ChannelProvider rows."""
    found = [settings.COMMS_BANDWIDTH_WEBHOOK_AUTH]
    for row in delivery_selectors.providers_of_class(provider_class=PROVIDER_CLASS):
        found.append(str(row.credentials.get("callback_auth", "")))
    return [c for c in dict.fromkeys(found) if c]


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class BandwidthIntake(IntakeView):
    name, url = "bandwidth", "bandwidth"
    audit_headers = ()  # basic auth only (Authorization is never kept)
    max_body_bytes = 256 * 1024
    event_types = {
        "message-delivered": EventType.DELIVERED, "message-failed": EventType.FAILED,
        "message-sending": NO_EVENT, "message-received": NO_EVENT,
    }

    def verify_basic_auth(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        expected = callback_credentials()
        if not expected:
            raise SignatureInvalid("bandwidth: no callback credentials configured (COMMS_BANDWIDTH_WEBHOOK_AUTH)")
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise SignatureInvalid("bandwidth: basic auth missing")
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("bandwidth: basic auth not base64") from None
        # Compare against every credential (no early exit), in constant time per comparison.
        if not any([hmac.compare_digest(given, c.encode()) for c in expected]):
            raise SignatureInvalid("bandwidth: basic auth does not match")

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, list) and bool(payload), "bandwidth: the body is not a JSON array of events")
        require(all(isinstance(e, dict) and isinstance(e.get("type"), str) and isinstance(e.get("message"), dict)
                    and isinstance(e["message"].get("id"), str) for e in payload),
                "bandwidth: every event needs a string 'type' and a 'message' object with an 'id'")

    def describe(self, payload: Any) -> tuple[str, str]:
        events = [e for e in payload if isinstance(e, dict)] if isinstance(payload, list) else []
        kinds = ",".join(sorted({str(e.get("type", "?")) for e in events}))
        first = events[0] if len(events) == 1 else {}
        message = first.get("message") if isinstance(first.get("message"), dict) else {}
        return kinds, f"{message.get('id', '')}:{first.get('type', '')}" if first else ""

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        events = [e for e in webhook.payload if isinstance(e, dict)] if isinstance(webhook.payload, list) else []
        inbound = [e for e in events if e.get("type") == "message-received"]
        replies = []
        for event in inbound:
            message = event.get("message") or {}
            reply = keyword_apply(provider_class=PROVIDER_CLASS, vendor="bandwidth",
                                  to_number=str(event.get("to") or message.get("owner") or ""),
                                  from_number=str(message.get("from", "")), body=str(message.get("text", "")),
                                  inbound_id=str(message.get("id", "")))
            replies.append(reply)
        if inbound and len(inbound) == len(events):
            applied = [r for r in replies if r is not None]
            note = f"{len(applied)} keyword(s) applied" if applied else "no keyword: not a command"
            return Handled(state=WebhookEvent.State.PROCESSED, note=note, reply=applied[-1] if applied else None)
        return None  # delivery receipts (the keywords of a mixed post are applied above, once by source_ref)

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        out = []
        for event in webhook.payload:
            kind = cls.event_type(str(event["type"]))
            if kind is NO_EVENT:
                continue
            message = event["message"]
            code = str(event.get("errorCode") or "")
            common = {"provider": cls.name, "raw_type": str(event["type"]),
                      "event_id": f"{message['id']}:{event['type']}", "provider_ref": message["id"],
                      "message_id": str(message.get("tag") or ""), "recipient": str(event.get("to", "")),
                      "timestamp": _when(event.get("time")), "data": {"error_code": code} if code else {},
                      "raw": event}
            reason = f"Bandwidth error {code}: {event.get('description', '')}" if code else str(event.get("description", ""))
            if kind == EventType.FAILED:
                if code in OPTED_OUT_CODES:
                    out.append(NormalisedEvent(event_type=EventType.UNSUBSCRIBED, reason=reason, **common))
                elif code in HARD_CODES or code in SOFT_CODES:
                    bounce = BounceType.HARD if code in HARD_CODES else BounceType.SOFT
                    out.append(NormalisedEvent(event_type=EventType.BOUNCED, bounce_type=bounce, reason=reason,
                                               **common))
                else:
                    out.append(NormalisedEvent(event_type=EventType.FAILED, reason=reason, **common))
                continue
            out.append(NormalisedEvent(event_type=kind, reason=reason if kind == EventType.UNKNOWN else "", **common))
        return out

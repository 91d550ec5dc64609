"""Twilio: SMS status callbacks and inbound SMS (STOP/HELP/START keywords).

Twilio signs the full URL it called plus the sorted POST fields (HMAC-SHA1 with the account's auth
token, header X-Twilio-Signature). Behind a TLS-terminating proxy our own view of the URL is
http://internal-host/...; ``intake.public_url`` rebuilds the public one from X-Forwarded-Proto/
-Host when COMMS_TRUST_FORWARDED is set (or from COMMS_WEBHOOK_BASE_URL), else validation would
fail for every genuine request. Callbacks carry no timestamp, so there is no skew check to make.

A request whose body is JSON is signed differently: the body is not among the signed fields,
instead the URL Twilio calls carries ``bodySHA256=<hex SHA-256 of the body>`` and that URL is what
is signed ("Validating signatures from Twilio", twilio.com/docs/usage/webhooks/webhooks-security).
So the body hash must be compared too, or a captured URL and signature would accept any body.
We check it the way the SDK's RequestValidator.validate does (params = the raw body string), plus
our own constant-time comparison of the hash, and refuse any non-form body that the URL does not
pin by hash: such a body is covered by no signature at all.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from twilio.request_validator import RequestValidator

from comms.models import Tenant
from comms.services import tenant_get_default
from delivery import selectors as delivery_selectors
from preferences import services as preferences
from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from webhooks.inbound import InboundMedia, InboundMessage, inbound_deliver
from webhooks.intake import NO_EVENT, Handled, IntakeView, SignatureInvalid, require
from webhooks.models import WebhookEvent

log = logging.getLogger(__name__)

# Twilio error codes (https://www.twilio.com/docs/api/errors) that mean the number cannot take SMS
# at all (suppress it), versus a handset that is off or a carrier hiccup (a soft bounce).
HARD_CODES = {"21211", "21614", "30005", "30006", "21408", "21612"}
SOFT_CODES = {"30001", "30003", "30008", "30009", "30010"}
UNSUBSCRIBED_CODES = {"21610"}


def auth_tokens() -> list[str]:
    """Every configured account's token: settings first, then Twilio ChannelProvider rows."""
    tokens = [settings.COMMS_TWILIO.get("auth_token", "")]
    for row in delivery_selectors.providers_of_class(provider_class="twilio.TwilioProvider"):
        tokens.append(str(row.credentials.get("auth_token", "")))
    for row in delivery_selectors.providers_of_class(provider_class="twilio_voice.TwilioVoiceProvider"):
        tokens.append(str(row.credentials.get("auth_token", "")))
    return [t for t in dict.fromkeys(tokens) if t]


class TwilioIntakeBase(IntakeView):
    audit_headers = ("X-Twilio-Signature",)
    max_body_bytes = 64 * 1024  # a few form fields

    def verify_signature(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise SignatureInvalid("twilio: X-Twilio-Signature header missing")
        url = self.signed_url  # the public URL Twilio called (intake.public_url), set by the base view
        params: Any = request.POST
        body_hash = parse_qs(urlsplit(url).query).get("bodySHA256")
        if body_hash:
            try:
                params = body.decode("utf-8")  # the SDK hashes the body as text (compute_hash)
            except UnicodeDecodeError:
                raise SignatureInvalid("twilio: body is not UTF-8, so it cannot match bodySHA256") from None
            computed = RequestValidator("").compute_hash(params)
            if not hmac.compare_digest(computed.encode(), body_hash[0].encode()):
                raise SignatureInvalid("twilio: body does not match the signed bodySHA256")
        elif body and not request.content_type.startswith("application/x-www-form-urlencoded"):
            raise SignatureInvalid("twilio: a non-form body must be pinned by bodySHA256 in the signed URL")
        if not any(RequestValidator(token).validate(url, params, signature) for token in auth_tokens()):
            raise SignatureInvalid("twilio: signature does not match")


class TwilioStatusIntake(TwilioIntakeBase):
    """Message status callbacks (the StatusCallback URL given when sending)."""

    name, url = "twilio", "twilio/status"
    # MessageStatus values (twilio.com/docs/messaging/api/message-resource#message-status-values).
    # Progress before the handset records nothing; "undelivered"/"failed" are refined by ErrorCode.
    event_types = {
        "delivered": EventType.DELIVERED, "read": EventType.OPENED,
        "undelivered": EventType.FAILED, "failed": EventType.FAILED,
        "queued": NO_EVENT, "accepted": NO_EVENT, "sending": NO_EVENT, "sent": NO_EVENT,
        "scheduled": NO_EVENT,
    }

    def check_shape(self, payload: Any) -> None:
        # Status callbacks always name the message and its status (MessageSid/MessageStatus, or the
        # older SmsSid/SmsStatus), each once.
        require(isinstance(payload, dict), "twilio: the body is not a set of fields")
        require(isinstance(payload.get("MessageSid") or payload.get("SmsSid"), str)
                and isinstance(payload.get("MessageStatus") or payload.get("SmsStatus"), str),
                "twilio: a status callback needs one MessageSid and one MessageStatus")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        status = str(payload.get("MessageStatus") or payload.get("SmsStatus") or "")
        return status, f"{payload.get('MessageSid', '')}:{status}"

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        p = webhook.payload if isinstance(webhook.payload, dict) else {}
        status = str(p.get("MessageStatus") or p.get("SmsStatus") or "")
        code = str(p.get("ErrorCode") or "")
        sid = str(p.get("MessageSid") or p.get("SmsSid") or "")
        common = {"provider": cls.name, "raw_type": status, "event_id": f"{sid}:{status}",
                  "provider_ref": sid,
                  "recipient": str(p.get("To", "")), "timestamp": webhook.received_at,
                  "data": {"error_code": code} if code else {}, "raw": webhook.payload}
        kind = cls.event_type(status)
        if kind is NO_EVENT:
            return []  # progress reports before the handset: nothing to record beyond the raw row
        if kind == EventType.FAILED:
            reason = f"Twilio error {code}" if code else status
            if code in UNSUBSCRIBED_CODES:
                return [NormalisedEvent(event_type=EventType.UNSUBSCRIBED, reason=reason, **common)]
            if code in HARD_CODES:
                return [NormalisedEvent(event_type=EventType.BOUNCED, bounce_type=BounceType.HARD, reason=reason,
                                        **common)]
            if code in SOFT_CODES:
                return [NormalisedEvent(event_type=EventType.BOUNCED, bounce_type=BounceType.SOFT, reason=reason,
                                        **common)]
            return [NormalisedEvent(event_type=EventType.FAILED, reason=reason, **common)]
        return [NormalisedEvent(event_type=kind, **common)]  # DELIVERED, OPENED, or UNKNOWN (kept, flagged)


def twiml(reply: str | None) -> HttpResponse:
    body = "<Response>" + (f"<Message>{escape(reply)}</Message>" if reply else "") + "</Response>"
    return HttpResponse('<?xml version="1.0" encoding="UTF-8"?>' + body, content_type="text/xml")


def tenants_for_number(number: str) -> list:
    """The tenants whose Twilio provider sends from `number` (several may share one number: a STOP to
    it is a STOP to each, as Twilio's own opt-out blocks the number for all); the default tenant when
    no tenant's provider names it (the settings-configured number serves it)."""
    ids = delivery_selectors.providers_for_number(provider_class="twilio.TwilioProvider",
                                                  number=number).values_list("tenant_id", flat=True)
    tenants = list(Tenant.objects.filter(pk__in=ids).order_by("pk"))
    return tenants or [tenant_get_default()]


class TwilioInboundIntake(TwilioIntakeBase):
    """Inbound SMS: STOP/START/HELP keywords are answered at once in TwiML (carriers expect the
    confirmation in the same exchange); the raw request is stored first like every other."""

    name, url = "twilio_sms", "twilio/sms"
    # Every request is one inbound message; it records no tracking event (keywords go to preferences).
    event_types = {"inbound": NO_EVENT}

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict), "twilio_sms: the body is not a set of fields")
        require(all(isinstance(payload.get(name), str) for name in ("From", "To"))
                and isinstance(payload.get("MessageSid") or payload.get("SmsSid"), str)
                and isinstance(payload.get("Body", ""), str),
                "twilio_sms: an inbound message needs one MessageSid, From, To and Body")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        return "inbound", str(payload.get("MessageSid", ""))

    def after_store(self, row: WebhookEvent) -> HttpResponse:
        from webhooks.services import webhook_process

        # Answered in the same exchange (carriers expect the STOP confirmation as the reply); if this
        # fails the row stays 'received' and the sweep applies the keyword later, without a reply.
        return twiml(webhook_process(webhook_id=row.pk).reply)

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        return []  # an inbound message is not an event about one of ours: act() applies its keyword

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        state, note, reply = inbound_handle(webhook)
        return Handled(state=state, note=note, reply=reply)


def inbound_handle(webhook: WebhookEvent) -> tuple[str, str, str | None]:
    """(state, note, reply) for a stored inbound SMS: STOP/START/HELP through preferences first; any
    other text is a person's message, handed to COMMS_INBOUND_MESSAGE_HANDLER (conversations)."""
    p = webhook.payload if isinstance(webhook.payload, dict) else {}
    to_number, from_number = str(p.get("To", "")), str(p.get("From", ""))
    # MessageSid identifies the inbound message: a retried or re-processed copy applies nothing twice.
    sid = str(p.get("MessageSid") or p.get("SmsSid") or "")
    reply = None
    tenants = tenants_for_number(to_number)
    for tenant in tenants:
        reply = preferences.sms_keyword_handle(tenant=tenant, from_number=from_number, to_number=to_number,
                                               body=str(p.get("Body", "")),
                                               source_ref=f"twilio:{sid}" if sid else "")
    if reply is not None:
        return WebhookEvent.State.PROCESSED, "keyword applied", reply
    note = inbound_deliver(InboundMessage(
        channel="sms", provider="twilio", sender=from_number, to=to_number, text=str(p.get("Body", "")),
        provider_ref=f"twilio:{sid}" if sid else "", media=media_of(p), tenant_ids=tuple(t.pk for t in tenants),
        webhook_id=webhook.pk))
    return WebhookEvent.State.PROCESSED, f"no keyword: {note}"[:2000], None


def media_of(payload: dict) -> tuple[InboundMedia, ...]:
    """MMS media as Twilio lists them: NumMedia, then MediaUrl<n> / MediaContentType<n> (n from 0)
    (twilio.com/docs/messaging/guides/webhook-request). Fetched later, through comms.netsafe."""
    try:
        count = min(int(payload.get("NumMedia") or 0), 10)  # Twilio allows at most 10 media per MMS
    except (TypeError, ValueError):
        return ()
    return tuple(InboundMedia(url=str(payload.get(f"MediaUrl{n}", "")),
                              content_type=str(payload.get(f"MediaContentType{n}", "")))
                 for n in range(count) if payload.get(f"MediaUrl{n}"))

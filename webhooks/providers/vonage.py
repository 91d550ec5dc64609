"""Vonage SMS API webhooks: delivery receipts (DLRs) and inbound SMS (STOP/START/HELP).

Both are signed the way the SMS API documents "signed webhooks" (developer.vonage.com/en/getting-started/
concepts/webhooks#validating-signed-webhooks, "Signing requests"): with signatures enabled on the account,
every request carries ``sig`` (over all its other parameters, sorted, with ``timestamp`` and ``nonce``),
computed with the account's *signature secret* by the account's method (``md5hash``, or an HMAC:
``md5``, ``sha1``, ``sha256``, ``sha512``). We recompute it with ``delivery.providers.vonage.signature``
(the same function that signs our requests) and compare in constant time, and refuse a ``timestamp``
further than COMMS_WEBHOOK_MAX_SKEW_SECONDS from our clock. Vonage must be set to POST (form or JSON)
its webhooks; GET callbacks are refused (405). The JWT ``Authorization: Bearer`` signing is the Messages
API's, not the SMS API's, and is not accepted here. No nonce store: a replayed receipt or keyword is
applied once anyway (event id / source_ref), while a nonce store could refuse Vonage's own retry.

Inbound keywords go through the same service as Twilio's (webhooks.providers.sms_keywords); the
confirmation text is not sent back here: Vonage takes no reply in the webhook's answer.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from delivery import selectors as delivery_selectors
from delivery.providers.vonage import signature
from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from webhooks.intake import NO_EVENT, Handled, IntakeView, SignatureInvalid, require
from webhooks.models import WebhookEvent
from webhooks.providers.esp import check_skew
from webhooks.providers.sms_keywords import keyword_apply

PROVIDER_CLASS = "vonage.VonageProvider"
# DLR err-code (developer.vonage.com/en/messaging/sms/guides/delivery-receipts#dlr-error-codes).
HARD_CODES = {"3", "4", "9", "11"}  # absent subscriber (permanent), barred by user, illegal number, unroutable
SOFT_CODES = {"2", "7", "8", "12"}  # absent (temporary), handset busy, network error, destination unreachable


def signature_secrets() -> list[tuple[str, str]]:
    """(secret, method) pairs: settings first, then Vonage ChannelProvider rows."""
    found = [(settings.COMMS_VONAGE_SIGNATURE_SECRET, settings.COMMS_VONAGE_SIGNATURE_METHOD)]
    for row in delivery_selectors.providers_of_class(provider_class=PROVIDER_CLASS):
        config = {**row.options, **row.credentials}
        found.append((str(config.get("signature_secret", "")), str(config.get("signature_method") or "md5hash")))
    return [pair for pair in dict.fromkeys(found) if pair[0]]


def _plus(number: Any) -> str:
    digits = str(number or "").strip()
    return digits if not digits or digits.startswith("+") else f"+{digits}"


class VonageIntakeBase(IntakeView):
    audit_headers = ()  # Vonage signs inside the body (sig, timestamp, nonce)
    max_body_bytes = 64 * 1024

    def verify_signature(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        pairs = signature_secrets()
        if not pairs:
            raise SignatureInvalid("vonage: no signature secret configured (COMMS_VONAGE_SIGNATURE_SECRET)")
        if not isinstance(payload, dict) or not isinstance(payload.get("sig"), str):
            raise SignatureInvalid("vonage: sig parameter missing")
        given = payload["sig"].lower().encode()
        fields = {k: v for k, v in payload.items() if k != "sig"}
        try:
            computed = [signature(fields, secret, method).encode() for secret, method in pairs]
        except ValueError as exc:  # a misconfigured method: refuse rather than guess
            raise SignatureInvalid(f"vonage: {exc}") from None
        if not any([hmac.compare_digest(given, c) for c in computed]):
            raise SignatureInvalid("vonage: signature does not match")

    def verify_timestamp(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        check_skew(payload.get("timestamp") if isinstance(payload, dict) else None, "vonage")


class VonageDlrIntake(VonageIntakeBase):
    """Delivery receipts (the account's or the request's ``callback`` URL)."""

    name, url = "vonage", "vonage/dlr"
    event_types = {
        "delivered": EventType.DELIVERED, "failed": EventType.FAILED, "rejected": EventType.FAILED,
        "expired": EventType.BOUNCED, "accepted": NO_EVENT, "buffered": NO_EVENT, "unknown": NO_EVENT,
    }

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict), "vonage: the body is not a set of fields")
        require(all(isinstance(payload.get(k), str) for k in ("messageId", "status", "msisdn")),
                "vonage: a delivery receipt needs one messageId, status and msisdn")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        return str(payload.get("status", "")), f"{payload.get('messageId', '')}:{payload.get('status', '')}"

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        p = webhook.payload
        status, code = str(p["status"]), str(p.get("err-code") or "0")
        kind = cls.event_type(status)
        if kind is NO_EVENT:
            return []  # progress before the handset: nothing beyond the raw row
        try:
            when = datetime.strptime(str(p.get("message-timestamp", "")), "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=timezone.utc)
        except ValueError:
            when = webhook.received_at
        common = {"provider": cls.name, "raw_type": status, "event_id": f"{p['messageId']}:{status}",
                  "provider_ref": str(p["messageId"]), "message_id": str(p.get("client-ref") or ""),
                  "recipient": _plus(p.get("msisdn")), "timestamp": when,
                  "data": {"error_code": code} if code != "0" else {}, "raw": p}
        reason = f"Vonage DLR {status}, err-code {code}"
        if kind == EventType.BOUNCED:  # expired: the carrier gave up on a handset that stayed away
            return [NormalisedEvent(event_type=kind, bounce_type=BounceType.SOFT, reason=reason, **common)]
        if kind == EventType.FAILED:
            if code in HARD_CODES or code in SOFT_CODES:
                bounce = BounceType.HARD if code in HARD_CODES else BounceType.SOFT
                return [NormalisedEvent(event_type=EventType.BOUNCED, bounce_type=bounce, reason=reason, **common)]
            return [NormalisedEvent(event_type=EventType.FAILED, reason=reason, **common)]
        return [NormalisedEvent(event_type=kind, **common)]


class VonageInboundIntake(VonageIntakeBase):
    """Inbound SMS (the number's or the account's inbound webhook URL)."""

    name, url = "vonage_sms", "vonage/inbound"
    event_types = {"inbound": NO_EVENT}

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict), "vonage_sms: the body is not a set of fields")
        require(all(isinstance(payload.get(k), str) for k in ("msisdn", "to", "messageId"))
                and isinstance(payload.get("text", ""), str),
                "vonage_sms: an inbound message needs one msisdn, to, messageId and text")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        return "inbound", str(payload.get("messageId", ""))

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        return []  # an inbound text is not an event about one of ours: act() applies its keyword

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        p = webhook.payload
        reply = keyword_apply(provider_class=PROVIDER_CLASS, vendor="vonage", to_number=str(p.get("to", "")),
                              from_number=_plus(p.get("msisdn")), body=str(p.get("text", "")),
                              inbound_id=str(p.get("messageId", "")))
        return Handled(state=WebhookEvent.State.PROCESSED,
                       note="keyword applied" if reply is not None else "no keyword: not a command", reply=reply)

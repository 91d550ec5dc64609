"""Postal (postalserver.io) message webhooks, verified by django-anymail's Postal view and more.

Postal signs each webhook body with its server's RSA key (lib/postal/http.rb): ``X-Postal-Signature``
is RSA-SHA1 (what older Postal sends and what anymail's ``PostalTrackingWebhookView.validate_request``
checks), Postal v3 adds ``X-Postal-Signature-256`` (RSA-SHA256) and ``X-Postal-Signature-KID`` (which
key). We run anymail's check unchanged (the SHA-1 signature must verify), and when the SHA-256 one is
sent it must verify too, so a v3 server's stronger signature is never ignored. The public key is the
one Postal shows for the server (base64, the "p=" of its DNS record), in COMMS_POSTAL_WEBHOOK_KEYS;
several keys may be listed while rotating (any one verifying is enough). The KID is kept with the row
for the audit, not used to choose: every configured key is tried.

Bodies carry no signed timestamp that Postal keeps stable across retries, so there is no skew check;
a replay changes nothing because each event is applied once (its ``uuid`` is the event id).
Events (docs.postalserver.io/developer/webhooks): MessageSent is Postal's hand-over to the recipient's
mail server (delivered, as anymail maps it), MessageDelayed a soft failure it retries (deferred),
MessageDeliveryFailed a permanent SMTP refusal (a hard bounce), MessageHeld a message Postal holds for
review (deferred), MessageBounced a bounce received after delivery (hard), MessageLinkClicked and
MessageLoaded engagement; DomainDNSError and the send-limit events concern no message.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.postal import PostalTrackingWebhookView
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.http import HttpRequest

from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from webhooks.intake import NO_EVENT, IntakeView, SignatureInvalid, rebuild_request, require
from webhooks.models import WebhookEvent
from webhooks.providers.esp import anymail_view


def _keys() -> list[str]:
    return [k.strip() for k in settings.COMMS_POSTAL_WEBHOOK_KEYS if k and k.strip()]


class PostalIntake(IntakeView):
    name, url = "postal", "postal"
    audit_headers = ("X-Postal-Signature", "X-Postal-Signature-256", "X-Postal-Signature-KID")
    secret_setting = "COMMS_POSTAL_WEBHOOK_KEYS"
    secret_missing = "no webhook public key configured (COMMS_POSTAL_WEBHOOK_KEYS)"
    max_body_bytes = 512 * 1024
    event_types = {
        "MessageSent": EventType.DELIVERED, "MessageDelayed": EventType.DEFERRED,
        "MessageDeliveryFailed": EventType.BOUNCED, "MessageHeld": EventType.DEFERRED,
        "MessageBounced": EventType.BOUNCED, "MessageLinkClicked": EventType.CLICKED,
        "MessageLoaded": EventType.OPENED,
        "DomainDNSError": NO_EVENT, "SendLimitApproaching": NO_EVENT, "SendLimitExceeded": NO_EVENT,
    }

    def verify_anymail(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        """anymail's PostalTrackingWebhookView.validate_request (RSA-SHA1 over the body), per configured key."""
        for key in _keys():
            view = anymail_view(PostalTrackingWebhookView, webhook_key=key)
            try:
                view.run_validators(request)
                return
            except AnymailWebhookValidationFailure:
                continue
            except Exception:  # a key anymail cannot load: try the next one, never accept on it
                continue
        raise SignatureInvalid("postal: X-Postal-Signature missing or not made with a configured key")

    def verify_sha256(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        """Postal v3's RSA-SHA256 signature, when sent, must verify as well."""
        given = request.headers.get("X-Postal-Signature-256")
        if given is None:
            return  # an older Postal: the SHA-1 signature above is all it sends
        try:
            signature = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureInvalid("postal: X-Postal-Signature-256 is not base64") from None
        for key in _keys():
            try:
                public = serialization.load_der_public_key(base64.b64decode(key))
                public.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
                return
            except (InvalidSignature, ValueError, TypeError, binascii.Error):
                continue
        raise SignatureInvalid("postal: X-Postal-Signature-256 does not verify")

    def check_shape(self, payload: Any) -> None:
        # {"event", "timestamp", "payload", "uuid"}; an inbound-route post (rcpt_to) is not ours to take here.
        require(isinstance(payload, dict) and isinstance(payload.get("event"), str)
                and isinstance(payload.get("payload"), dict) and "rcpt_to" not in payload,
                "postal: the body is not a Postal event ({'event', 'payload', 'uuid'})")

    def describe(self, payload: Any) -> tuple[str, str]:
        payload = payload if isinstance(payload, dict) else {}
        return str(payload.get("event", "")), str(payload.get("uuid", ""))

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        raw_type = str(webhook.payload["event"])
        kind = cls.event_type(raw_type)
        if kind is NO_EVENT:
            return []
        view = anymail_view(PostalTrackingWebhookView, webhook_key="")
        request = rebuild_request(body=webhook.body.encode(), content_type=webhook.content_type,
                                  headers=webhook.headers)
        out = []
        for ev in view.parse_events(request):  # anymail reads ids, recipient, url, times; we keep Postal's type
            esp = ev.esp_event if isinstance(ev.esp_event, dict) else {}
            inner = esp.get("payload") if isinstance(esp.get("payload"), dict) else {}
            bounce = BounceType.HARD if kind == EventType.BOUNCED else ""
            out.append(NormalisedEvent(
                provider=cls.name, event_type=kind, raw_type=raw_type, event_id=str(ev.event_id or ""),
                provider_ref=str(ev.message_id) if ev.message_id is not None else "",
                recipient=ev.recipient or "", timestamp=ev.timestamp or webhook.received_at, bounce_type=bounce,
                reason=" ".join(x for x in (ev.description, ev.mta_response) if x)[:500],
                url=ev.click_url or "", user_agent=ev.user_agent or "", ip=str(inner.get("ip_address") or ""),
                data={"tags": [t for t in ev.tags if t]} if any(ev.tags or []) else {}, raw=ev.esp_event))
        return out

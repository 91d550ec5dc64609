"""Amazon SES event notifications delivered by Amazon SNS.

SNS signs each message (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with a certificate
it names by URL. Anymail does not check that signature, so we do, following AWS's "Verifying
the signatures of Amazon SNS messages": the certificate URL must be an SNS host
(COMMS_SNS_HOST_PATTERN, by default https://sns.<region>.amazonaws.com/), the topic must be on
COMMS_SES_TOPIC_ARNS, and the message must be recent. Parsing is anymail's SES tracking parser.
A SubscriptionConfirmation for an allowed topic is confirmed by the processing task.
"""

from __future__ import annotations

import base64
import logging
import re
import urllib.request
from datetime import datetime, timezone as dt_timezone
from functools import lru_cache
from typing import Any

from anymail.exceptions import AnymailError
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from comms import errors, jsonlimits
from webhooks.intake import Handled, IntakeView, SignatureInvalid, require
from webhooks.models import WebhookEvent
from webhooks.providers.esp import ANYMAIL_TO_OURS, anymail_view

log = logging.getLogger(__name__)

_SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_host_allowed(url: str) -> bool:
    return bool(url) and re.match(settings.COMMS_SNS_HOST_PATTERN, url) is not None and "@" not in url.split("/")[2]


def string_to_sign(message: dict) -> bytes:
    keys = _SIGNED_KEYS.get(message.get("Type", ""))
    if keys is None:
        raise SignatureInvalid(f"ses: unknown SNS message type {message.get('Type')!r}")
    parts = []
    for key in keys:
        if key in message and message[key] is not None:
            parts.append(f"{key}\n{message[key]}\n")
        elif key != "Subject":
            raise SignatureInvalid(f"ses: SNS message lacks {key}")
    return "".join(parts).encode()


@lru_cache(maxsize=32)
def _certificate(url: str) -> x509.Certificate:
    with urllib.request.urlopen(url, timeout=settings.COMMS_SNS_CERT_TIMEOUT) as response:  # noqa: S310 (host checked)
        return x509.load_pem_x509_certificate(response.read(64 * 1024))


def verify_sns(message: dict) -> None:
    """Raise SignatureInvalid unless `message` is a genuine, recent SNS message for an allowed topic."""
    if not isinstance(message, dict):
        raise SignatureInvalid("ses: body is not an SNS message")
    cert_url = str(message.get("SigningCertURL") or message.get("SigningCertUrl") or "")
    if not sns_host_allowed(cert_url) or not cert_url.split("?")[0].endswith(".pem"):
        raise SignatureInvalid("ses: certificate URL is not an Amazon SNS host")
    if message.get("TopicArn") not in settings.COMMS_SES_TOPIC_ARNS:
        raise SignatureInvalid("ses: topic is not on COMMS_SES_TOPIC_ARNS")
    digest = _HASHES.get(str(message.get("SignatureVersion", "")))
    if digest is None:
        raise SignatureInvalid("ses: unsupported SignatureVersion")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except ValueError:
        raise SignatureInvalid("ses: signature is not base64") from None
    try:
        certificate = _certificate(cert_url)
    except (OSError, ValueError) as exc:
        raise SignatureInvalid(f"ses: certificate unavailable ({type(exc).__name__})") from None
    try:
        certificate.public_key().verify(signature, string_to_sign(message), padding.PKCS1v15(), digest())
    except (InvalidSignature, TypeError, ValueError):
        raise SignatureInvalid("ses: SNS signature does not verify") from None
    sent = parse_datetime(str(message.get("Timestamp", "")))
    if sent is None:
        raise SignatureInvalid("ses: SNS timestamp missing")
    age = abs((datetime.now(dt_timezone.utc) - sent).total_seconds())
    if age > settings.COMMS_SNS_MAX_AGE_SECONDS:
        raise SignatureInvalid("ses: SNS message outside the allowed time window")


class SesIntake(IntakeView):
    name, url = "ses", "ses"
    max_body_bytes = 300 * 1024  # an SNS message is at most 256 KB
    audit_headers = ("X-Amz-Sns-Message-Type", "X-Amz-Sns-Message-Id", "X-Amz-Sns-Topic-Arn",
                     "X-Amz-Sns-Subscription-Arn")
    # anymail's SES parser has already mapped SES's eventType/notificationType to its own types
    event_types = ANYMAIL_TO_OURS

    @classmethod
    def _anymail(cls) -> AmazonSESTrackingWebhookView:
        return anymail_view(AmazonSESTrackingWebhookView, webhook_secret=settings.COMMS_SES_WEBHOOK_AUTH or [],
                            auto_confirm_sns_subscriptions=False)

    def verify_anymail(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        try:  # anymail: header/body consistency (type, message id) and optional basic auth
            self._anymail().run_validators(request)
        except AnymailError as exc:
            raise SignatureInvalid(f"ses: {exc}") from None
        except ValueError:
            raise SignatureInvalid("ses: body is not an SNS message") from None

    def verify_sns_signature(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        verify_sns(payload)

    def check_shape(self, payload: Any) -> None:
        # verify_sns has checked the envelope; a Notification's Message must be one SES event
        # (an object naming its eventType, or notificationType for identity notifications).
        require(isinstance(payload, dict), "ses: the body is not an SNS message object")
        if payload.get("Type") != "Notification":
            return
        try:
            inner = jsonlimits.loads(payload.get("Message") or "")
        except (TypeError, ValueError, errors.JsonTooDeep):
            inner = None
        require(isinstance(inner, dict) and isinstance(inner.get("eventType") or inner.get("notificationType"), str),
                "ses: the SNS Message is not an SES event object")

    def describe(self, payload: Any) -> tuple[str, str]:
        if not isinstance(payload, dict):
            return "", ""
        kind = payload.get("Type", "")
        if kind == "Notification":
            try:
                inner = jsonlimits.loads(payload.get("Message", ""))
                kind = inner.get("eventType") or inner.get("notificationType") or kind
            except (TypeError, ValueError, AttributeError, errors.JsonTooDeep):
                pass
        return str(kind), str(payload.get("MessageId", ""))

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        message = webhook.payload or {}
        if message.get("Type") != "Notification":
            return []  # confirmations are handled by confirm(); nothing to normalise
        try:
            ses_event = jsonlimits.loads(message.get("Message", ""))
        except (TypeError, ValueError, errors.JsonTooDeep):
            return [NormalisedEvent(provider=cls.name, event_type=EventType.UNKNOWN, raw_type="unparsable",
                                    raw=message.get("Message"))]
        if not isinstance(ses_event, dict):
            return [NormalisedEvent(provider=cls.name, event_type=EventType.UNKNOWN, raw_type="unparsable",
                                    raw=ses_event)]
        headers = {h.get("name", "").lower(): h.get("value", "")
                   for h in ses_event.get("mail", {}).get("headers", []) if isinstance(h, dict)}
        out = []
        for ev in cls._anymail().esp_to_anymail_events(ses_event, message):
            kind = cls.event_type(ev.event_type)
            bounce = ""
            if kind == EventType.BOUNCED:
                bounce = BounceType.HARD if ses_event.get("bounce", {}).get("bounceType") == "Permanent" \
                    else BounceType.SOFT
            raw = ses_event.get("eventType") or ses_event.get("notificationType") or ""
            out.append(NormalisedEvent(
                provider=cls.name, event_type=kind, raw_type=str(raw),
                # one SNS message can carry several recipients: the event id is per recipient
                event_id=f"{ev.event_id}:{ev.recipient or ''}", provider_ref=ev.message_id or "",
                message_id=headers.get("x-comms-message-id", ""), recipient=ev.recipient or "",
                timestamp=ev.timestamp, bounce_type=bounce, reason=ev.description or ev.mta_response or "",
                url=ev.click_url or "", user_agent=ev.user_agent or "",
                ip=str(ses_event.get(str(raw).lower(), {}).get("ipAddress", "") or ""), raw=ses_event,
            ))
        return out

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        """A verified SubscriptionConfirmation is confirmed here; notifications go through parse()."""
        if (webhook.payload or {}).get("Type") != "SubscriptionConfirmation":
            return None
        return Handled(state=WebhookEvent.State.PROCESSED, note=cls.confirm(webhook))

    @classmethod
    def confirm(cls, webhook: WebhookEvent) -> str:
        """Visit the SubscribeURL of a verified SubscriptionConfirmation (only on an SNS host)."""
        url = str((webhook.payload or {}).get("SubscribeURL", ""))
        if not sns_host_allowed(url):
            return "SubscribeURL is not an Amazon SNS host; not confirmed"
        with urllib.request.urlopen(url, timeout=settings.COMMS_SNS_CERT_TIMEOUT) as response:  # noqa: S310
            response.read(64 * 1024)
        return "subscription confirmed"

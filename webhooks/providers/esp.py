"""SendGrid, Mailgun and Postmark through django-anymail's tracking webhook views.

Anymail verifies (SendGrid's ECDSA event-webhook signature, Mailgun's HMAC, Postmark's basic auth)
and parses (into AnymailTrackingEvent) for us; these classes only add what anymail leaves out:
timestamp-skew and replay checks (Mailgun tokens are single-use, remembered in Redis for a day)
and the hard/soft bounce split, which anymail folds into BOUNCED/DEFERRED.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import EventType as AnymailType
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.http import HttpRequest

from comms.redis import redis_client
from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from webhooks.intake import IntakeView, SignatureInvalid, rebuild_request, require
from webhooks.models import WebhookEvent

# Anymail has already turned each provider's raw types into its own normalised ones (its per-ESP
# event_types maps); this maps those to ours. Anymail's UNKNOWN (and INBOUND…) stay UNKNOWN.
ANYMAIL_TO_OURS = {
    AnymailType.DELIVERED: EventType.DELIVERED, AnymailType.BOUNCED: EventType.BOUNCED,
    AnymailType.COMPLAINED: EventType.COMPLAINED, AnymailType.OPENED: EventType.OPENED,
    AnymailType.CLICKED: EventType.CLICKED, AnymailType.UNSUBSCRIBED: EventType.UNSUBSCRIBED,
    AnymailType.FAILED: EventType.FAILED, AnymailType.REJECTED: EventType.REJECTED,
    AnymailType.DEFERRED: EventType.DEFERRED, AnymailType.SENT: EventType.SENT, AnymailType.QUEUED: EventType.SENT,
    AnymailType.UNKNOWN: EventType.UNKNOWN,
}


def anymail_view(cls: type, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # anymail warns that SendGrid is community-supported now
        warnings.simplefilter("ignore")
        return cls(**kwargs)


def check_skew(timestamp: Any, provider: str) -> None:
    """Signed timestamps older or newer than COMMS_WEBHOOK_MAX_SKEW_SECONDS are replays or forgeries."""
    try:
        ts = float(timestamp)
    except (TypeError, ValueError):
        raise SignatureInvalid(f"{provider}: signature timestamp missing or not a number") from None
    if abs(time.time() - ts) > settings.COMMS_WEBHOOK_MAX_SKEW_SECONDS:
        raise SignatureInvalid(f"{provider}: signature timestamp outside the allowed window")


_PARSERS: dict[tuple, Any] = {}


class AnymailIntake(IntakeView):
    """An ESP whose signature check and parser anymail provides; ``event_types`` maps anymail's types."""

    anymail_class: ClassVar[type]
    event_types = ANYMAIL_TO_OURS

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:  # pragma: no cover - contract
        raise NotImplementedError

    def verify_anymail(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        """Anymail's validate_request chain for this ESP (signature, basic auth)."""
        view = anymail_view(self.anymail_class, **self.view_kwargs())
        try:
            view.run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            raise SignatureInvalid(str(exc)) from None
        except Exception as exc:  # anymail raises on shapes it cannot read before it can check them
            raise SignatureInvalid(f"unverifiable request: {type(exc).__name__}") from None

    @classmethod
    def bounce_type(cls, esp_event: dict, anymail_type: str) -> str:
        return BounceType.HARD

    @classmethod
    def parser(cls) -> Any:
        """Anymail's view for parsing, made once per configuration: building one loads the provider's
        key (SendGrid's ECDSA public key), which cost more than parsing a one-event post."""
        kwargs = cls.view_kwargs()
        key = (cls.anymail_class, repr(sorted(kwargs.items())))
        view = _PARSERS.get(key)
        if view is None:
            if len(_PARSERS) > 32:  # keys rotated many times (tests): start over
                _PARSERS.clear()
            view = _PARSERS[key] = anymail_view(cls.anymail_class, **kwargs)
        return view

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        view = cls.parser()
        request = rebuild_request(body=webhook.body.encode(), content_type=webhook.content_type,
                                  headers=webhook.headers)
        out = []
        for ev in view.parse_events(request):
            esp_event = ev.esp_event if isinstance(ev.esp_event, dict) else {}
            kind = cls.event_type(ev.event_type)
            bounce = ""
            if kind in (EventType.BOUNCED, EventType.DEFERRED):
                bounce = cls.bounce_type(esp_event, ev.event_type)
                if bounce:
                    kind = EventType.BOUNCED
            metadata = ev.metadata or {}
            out.append(NormalisedEvent(
                provider=cls.name, event_type=kind, raw_type=cls.raw_type(esp_event, ev.event_type),
                event_id=cls.event_id(esp_event, ev.event_id), provider_ref=ev.message_id or "",
                message_id=str(metadata.get("comms_message_id", "")), recipient=ev.recipient or "",
                timestamp=ev.timestamp, bounce_type=bounce, reason=ev.description or ev.mta_response or "",
                url=ev.click_url or "", user_agent=ev.user_agent or "", ip=str(esp_event.get("ip", "") or ""),
                data={"tags": ev.tags} if ev.tags else {}, raw=ev.esp_event,
            ))
        return out

    @classmethod
    def raw_type(cls, esp_event: dict, anymail_type: str) -> str:
        return str(esp_event.get("event") or anymail_type)

    @classmethod
    def event_id(cls, esp_event: dict, anymail_id: str | None) -> str:
        return anymail_id or ""


class SendGridIntake(AnymailIntake):
    """SendGrid Event Webhook with Signed Event Webhook (ECDSA P-256 over timestamp + body)."""

    name, url = "sendgrid", "sendgrid"
    max_body_bytes = 8 * 1024 * 1024  # SendGrid batches many events per post
    audit_headers = ("X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp")
    anymail_class = SendGridTrackingWebhookView
    secret_setting = "COMMS_SENDGRID_VERIFICATION_KEY"
    secret_missing = "no verification key configured (COMMS_SENDGRID_VERIFICATION_KEY)"

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"tracking_webhook_verification_key": settings.COMMS_SENDGRID_VERIFICATION_KEY or None}

    def verify_timestamp(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        check_skew(request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"), self.name)

    def check_shape(self, payload: Any) -> None:
        # "SendGrid sends a JSON array of event objects" (Event Webhook reference).
        require(isinstance(payload, list) and bool(payload), "sendgrid: the body is not a JSON array of events")
        require(all(isinstance(e, dict) and isinstance(e.get("event"), str) for e in payload),
                "sendgrid: every event must be an object with a string 'event'")

    def describe(self, payload: Any) -> tuple[str, str]:
        events = payload if isinstance(payload, list) else []
        kinds = sorted({str(e.get("event", "?")) for e in events if isinstance(e, dict)})
        first = events[0].get("sg_event_id", "") if events and isinstance(events[0], dict) else ""
        return ",".join(kinds), str(first) if len(events) == 1 else ""

    @classmethod
    def bounce_type(cls, esp_event: dict, anymail_type: str) -> str:
        # SendGrid: "bounce" events are hard unless type is "blocked" (a soft, reputation/content
        # refusal); "deferred" means SendGrid is still retrying, which is not a bounce.
        if esp_event.get("event") == "bounce":
            return BounceType.SOFT if esp_event.get("type") == "blocked" else BounceType.HARD
        return ""


class MailgunIntake(AnymailIntake):
    """Mailgun webhooks (HMAC-SHA256 over timestamp + token, with the webhook signing key)."""

    name, url = "mailgun", "mailgun"
    audit_headers = ()  # Mailgun signs inside the body (signature.timestamp/token/signature)
    anymail_class = MailgunTrackingWebhookView
    secret_setting = "COMMS_MAILGUN_SIGNING_KEY"
    secret_missing = "no signing key configured (COMMS_MAILGUN_SIGNING_KEY)"

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"webhook_signing_key": settings.COMMS_MAILGUN_SIGNING_KEY}

    @staticmethod
    def _signature_block(payload: Any) -> dict:
        block = payload.get("signature", {}) if isinstance(payload, dict) else {}
        if not isinstance(block, dict) or "token" not in block:
            block = payload if isinstance(payload, dict) else {}
        return block

    def verify_timestamp(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        check_skew(self._signature_block(payload).get("timestamp"), self.name)

    def verify_token_unused(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        # Mailgun: "cache the token and deny any subsequent request with the same token" (replays).
        key = f"comms:mailgun-token:{self._signature_block(payload).get('token', '')}"
        if not redis_client().set(key, 1, nx=True, ex=settings.COMMS_WEBHOOK_MAX_SKEW_SECONDS * 2 + 60):
            raise SignatureInvalid("mailgun: token already used (replay)")

    def check_shape(self, payload: Any) -> None:
        # Current webhooks post {"signature": {...}, "event-data": {"event": ...}}; legacy ones are
        # form fields with a top-level "event" (anymail reads both).
        require(isinstance(payload, dict), "mailgun: the body is not a JSON object")
        data = payload.get("event-data")
        require(isinstance(data, dict) and isinstance(data.get("event"), str)
                or data is None and isinstance(payload.get("event"), str),
                "mailgun: no 'event-data' object with a string 'event'")

    def describe(self, payload: Any) -> tuple[str, str]:
        data = payload.get("event-data", {}) if isinstance(payload, dict) else {}
        return str(data.get("event") or payload.get("event", "")), str(data.get("id", ""))

    @classmethod
    def bounce_type(cls, esp_event: dict, anymail_type: str) -> str:
        # Mailgun "failed": severity permanent → hard; temporary (anymail: DEFERRED) → soft bounce.
        data = esp_event.get("event-data", esp_event)
        if data.get("event") == "failed":
            return BounceType.SOFT if data.get("severity") == "temporary" else BounceType.HARD
        return ""

    @classmethod
    def raw_type(cls, esp_event: dict, anymail_type: str) -> str:
        return str(esp_event.get("event-data", esp_event).get("event") or anymail_type)

    @classmethod
    def event_id(cls, esp_event: dict, anymail_id: str | None) -> str:
        # anymail uses the signature token; Mailgun's own event id survives a redelivery.
        return str(esp_event.get("event-data", {}).get("id") or anymail_id or "")


class PostmarkIntake(AnymailIntake):
    """Postmark webhooks: HTTP basic auth credentials embedded in the webhook URL."""

    name, url = "postmark", "postmark"
    audit_headers = ("X-Postmark-Server-Token",)
    anymail_class = PostmarkTrackingWebhookView
    secret_setting = "COMMS_POSTMARK_WEBHOOK_AUTH"
    secret_missing = "no basic auth configured (COMMS_POSTMARK_WEBHOOK_AUTH)"
    _SOFT = {"SoftBounce", "Transient", "DnsError", "AutoResponder"}

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"webhook_secret": settings.COMMS_POSTMARK_WEBHOOK_AUTH}

    def check_shape(self, payload: Any) -> None:
        # One event per request: a JSON object whose RecordType names it (Postmark webhooks overview).
        require(isinstance(payload, dict) and isinstance(payload.get("RecordType"), str),
                "postmark: the body is not a JSON object with a string 'RecordType'")

    def describe(self, payload: Any) -> tuple[str, str]:
        if not isinstance(payload, dict):
            return "", ""
        kind = payload.get("RecordType", "")
        if payload.get("Type"):
            kind = f"{kind}:{payload['Type']}"
        return str(kind), str(payload.get("ID", "") or "")

    @classmethod
    def bounce_type(cls, esp_event: dict, anymail_type: str) -> str:
        if esp_event.get("RecordType") != "Bounce":
            return ""
        kind = esp_event.get("Type", "")
        if kind in cls._SOFT:
            return BounceType.SOFT if kind != "AutoResponder" else ""
        return BounceType.HARD if kind in ("HardBounce", "BadEmailAddress", "ManuallyDeactivated") or \
            anymail_type == AnymailType.BOUNCED else ""

    @classmethod
    def raw_type(cls, esp_event: dict, anymail_type: str) -> str:
        return str(esp_event.get("Type") or esp_event.get("RecordType") or anymail_type)

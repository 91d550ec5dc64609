"""Inbound email (replies to conversations) from the ESPs' inbound routes, parsed by django-anymail.

Each provider posts the received mail in its own shape; anymail's inbound views turn every shape
into one ``AnymailInboundMessage`` (anymail/webhooks/<esp>.py), which we normalise into a
``webhooks.inbound.InboundMessage`` for COMMS_INBOUND_MESSAGE_HANDLER. Authentication per provider:

- SendGrid Inbound Parse signs nothing ("The Inbound Parse Webhook does not sign requests"): the
  URL must carry basic-auth credentials (COMMS_SENDGRID_INBOUND_AUTH), checked by anymail's
  basic-auth validator, as anymail recommends for every ESP without signatures.
- Mailgun routes (forward() action) sign the form fields timestamp+token with the webhook signing
  key (HMAC-SHA256, anymail's MailgunBaseWebhookView), plus our skew and single-use token checks.
- Postmark inbound: basic auth embedded in the webhook URL (COMMS_POSTMARK_INBOUND_AUTH).
- SES receipt rules with an SNS action: the SNS signature is verified exactly as for SES events.

Mail bodies with attachments are binary multipart: the stored row keeps a text copy (the audit
trail), so the message is applied right away from the bytes received; if that fails the row stays
'received' and the sweep applies it from the stored copy (attachments may then be lost, which the
row's note says).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from anymail.exceptions import AnymailError
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from comms import errors, jsonlimits
from webhooks.inbound import inbound_deliver, normalise
from webhooks.intake import NO_EVENT, Handled, IntakeView, Malformed, SignatureInvalid, parse_payload, \
    rebuild_request, require
from webhooks.models import WebhookEvent
from webhooks.providers.esp import MailgunIntake, anymail_view
from webhooks.providers.ses import SesIntake, verify_sns

log = logging.getLogger(__name__)

MAX_INBOUND_EMAIL_BYTES = 26 * 1024 * 1024  # ESPs forward mails up to 25-30 MB (SendGrid: 30 MB total)


class InboundEmailIntake(IntakeView):
    """Base: keep the bytes, parse with anymail's inbound view, hand each mail on at once."""

    anymail_class: ClassVar[type]
    max_body_bytes = MAX_INBOUND_EMAIL_BYTES
    event_types = {"inbound": NO_EVENT}

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:  # pragma: no cover - contract
        raise NotImplementedError

    @classmethod
    def anymail(cls) -> Any:
        return anymail_view(cls.anymail_class, **cls.view_kwargs())

    def read_body(self, request: HttpRequest) -> bytes | None:
        self.raw_body = super().read_body(request)
        return self.raw_body

    def parse_body(self, body: bytes, content_type: str) -> Any:
        if content_type.startswith("multipart/form-data"):
            # Only the text fields are kept as the payload (files are in the raw body).
            request = rebuild_request(body=body, content_type=content_type, headers={})
            try:
                return {k: v[:20000] for k, v in request.POST.items()}
            except Exception as exc:  # a broken multipart body
                raise Malformed(f"{self.name}: multipart body not readable: {type(exc).__name__}") from None
        return parse_payload(body, content_type)

    def verify_anymail(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        try:
            self.anymail().run_validators(request)
        except AnymailError as exc:
            raise SignatureInvalid(f"{self.name}: {exc}") from None
        except Exception as exc:
            raise SignatureInvalid(f"{self.name}: unverifiable request: {type(exc).__name__}") from None

    def describe(self, payload: Any) -> tuple[str, str]:
        return "inbound", ""

    def after_store(self, row: WebhookEvent) -> HttpResponse:
        try:
            with transaction.atomic():
                locked = WebhookEvent.objects.select_for_update().get(pk=row.pk)
                locked.state, locked.error = WebhookEvent.State.PROCESSED, self.apply(
                    row, body=self.raw_body)[:2000]
                locked.attempts += 1
                locked.processed_at, locked.next_attempt_at = timezone.now(), None
                locked.save(update_fields=["state", "error", "attempts", "processed_at", "next_attempt_at"])
        except Exception:  # the sweep retries from the stored copy; the provider still gets its 200
            log.exception("%s inbound #%s not applied now; the sweep will retry", self.name, row.pk)
        return self.accepted(row)

    @classmethod
    def apply(cls, row: WebhookEvent, *, body: bytes) -> str:
        """Parse `body` as this provider's inbound post and hand each mail on; the row's note."""
        request = rebuild_request(body=body, content_type=row.content_type, headers=row.headers)
        try:
            events = cls.parse_mail_events(request, row)
        except (AnymailError, KeyError, ValueError, TypeError) as exc:
            raise Malformed(f"{cls.name}: inbound mail not understood: {type(exc).__name__}: {exc}"[:500]) from exc
        notes = [inbound_deliver(normalise(ev.message, provider=cls.name, webhook_id=row.pk))
                 for ev in events if ev.message is not None]
        return "; ".join(notes) or "no mail in the request"

    @classmethod
    def parse_mail_events(cls, request: HttpRequest, row: WebhookEvent) -> list:
        return cls.anymail().parse_events(request)

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list:
        return []  # an inbound mail is not an event about one of our messages

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        note = cls.apply(webhook, body=webhook.body.encode())
        return Handled(state=WebhookEvent.State.PROCESSED, note=f"(from the stored copy) {note}")


class SendGridInboundIntake(InboundEmailIntake):
    name, url = "sendgrid_inbound", "sendgrid/inbound"
    audit_headers = ()
    anymail_class = SendGridInboundWebhookView
    secret_setting = "COMMS_SENDGRID_INBOUND_AUTH"
    secret_missing = "no basic auth configured (COMMS_SENDGRID_INBOUND_AUTH)"

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"webhook_secret": settings.COMMS_SENDGRID_INBOUND_AUTH}

    def check_shape(self, payload: Any) -> None:
        # Inbound Parse posts either parsed fields ("headers", "text", …) or the raw MIME ("email").
        require(isinstance(payload, dict) and ("headers" in payload or "email" in payload),
                "sendgrid_inbound: neither 'headers' nor 'email' field in the form")


class MailgunInboundIntake(InboundEmailIntake):
    name, url = "mailgun_inbound", "mailgun/inbound"
    audit_headers = ()  # the signature is inside the form (timestamp, token, signature)
    anymail_class = MailgunInboundWebhookView
    secret_setting = "COMMS_MAILGUN_SIGNING_KEY"
    secret_missing = "no signing key configured (COMMS_MAILGUN_SIGNING_KEY)"
    # The same replay defences as Mailgun's tracking webhooks (a signed form replayed later).
    verify_timestamp = MailgunIntake.verify_timestamp
    verify_token_unused = MailgunIntake.verify_token_unused
    _signature_block = staticmethod(MailgunIntake._signature_block)

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"webhook_signing_key": settings.COMMS_MAILGUN_SIGNING_KEY}

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict) and ("body-mime" in payload or "sender" in payload or "from" in payload),
                "mailgun_inbound: no 'body-mime' or parsed message fields in the form")


class PostmarkInboundIntake(InboundEmailIntake):
    name, url = "postmark_inbound", "postmark/inbound"
    audit_headers = ()
    anymail_class = PostmarkInboundWebhookView
    secret_setting = "COMMS_POSTMARK_INBOUND_AUTH"
    secret_missing = "no basic auth configured (COMMS_POSTMARK_INBOUND_AUTH)"

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"webhook_secret": settings.COMMS_POSTMARK_INBOUND_AUTH}

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict) and isinstance(payload.get("From", payload.get("FromFull")), (str, dict)),
                "postmark_inbound: the body is not an inbound message object")

    def describe(self, payload: Any) -> tuple[str, str]:
        return "inbound", str(payload.get("MessageID", "")) if isinstance(payload, dict) else ""


class SesInboundIntake(InboundEmailIntake):
    """SES receipt rule → SNS action (encoding BASE64 or UTF8). S3 actions are not supported: the
    mail must arrive inside the notification (SNS caps it at 150 KB; larger mails need S3 — stated)."""

    name, url = "ses_inbound", "ses/inbound"
    max_body_bytes = 300 * 1024
    audit_headers = SesIntake.audit_headers
    anymail_class = AmazonSESInboundWebhookView

    @classmethod
    def view_kwargs(cls) -> dict[str, Any]:
        return {"webhook_secret": settings.COMMS_SES_WEBHOOK_AUTH or [], "auto_confirm_sns_subscriptions": False}

    def verify_sns_signature(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        verify_sns(payload)

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict), "ses_inbound: the body is not an SNS message object")

    def after_store(self, row: WebhookEvent) -> HttpResponse:
        if (row.payload or {}).get("Type") == "SubscriptionConfirmation":
            return IntakeView.after_store(self, row)  # confirmed by the processing task (act below)
        return super().after_store(row)

    @classmethod
    def parse_mail_events(cls, request: HttpRequest, row: WebhookEvent) -> list:
        message = row.payload or {}
        if message.get("Type") != "Notification":
            return []
        try:
            ses_event = jsonlimits.loads(message.get("Message", ""))
        except errors.JsonTooDeep as exc:
            raise ValueError(str(exc)) from None
        action = (ses_event.get("receipt") or {}).get("action") or {} if isinstance(ses_event, dict) else {}
        if action.get("type") != "SNS":
            # An S3 action would make anymail download from S3 with ambient credentials: not ours to do.
            raise ValueError(f"only SNS receipt actions carry the mail (got {action.get('type')!r})")
        return cls.anymail().esp_to_anymail_events(ses_event, message)

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        if (webhook.payload or {}).get("Type") == "SubscriptionConfirmation":
            return Handled(state=WebhookEvent.State.PROCESSED, note=SesIntake.confirm(webhook))
        return super().act(webhook)

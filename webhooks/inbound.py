"""Inbound person-to-person messages (an SMS reply, an email reply) handed up to whoever consumes them.

Webhooks sits below the conversations package, so it cannot import it. Every inbound provider
(Twilio SMS today; Bandwidth, Vonage, the email providers' inbound routes, the dev SMTP sink) turns
its request into one ``InboundMessage`` and calls ``inbound_deliver``, which hands it to the
callable named by ``settings.COMMS_INBOUND_MESSAGE_HANDLER`` (a dotted path, like
COMMS_DIGEST_HANDLER). Keyword handling (STOP/START/HELP) happens before, in the provider module.
"""

from __future__ import annotations

import logging
from email.utils import getaddresses
from dataclasses import dataclass, field
from typing import Any

from anymail.inbound import AnymailInboundMessage
from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundMedia:
    """One attachment: either its bytes (email) or a provider URL to fetch them from (MMS)."""

    content: bytes | None = None
    url: str = ""
    content_type: str = ""
    filename: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A normalised inbound message, whatever carried it."""

    channel: str  # "sms" | "email"
    provider: str  # "twilio", "sendgrid", "mailgun", "postmark", "ses", "smtp_sink", …
    sender: str  # E.164 number or email address, as the provider gave it
    to: str  # our number, or the address mailed (conv+<token>@…)
    text: str
    provider_ref: str = ""  # MessageSid / Message-ID: the same inbound message is applied once
    subject: str = ""
    html: str = ""
    media: tuple[InboundMedia, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # In-Reply-To, References (email)
    tenant_ids: tuple[Any, ...] = ()  # the tenants the receiving number/route serves; () = any
    webhook_id: int | None = None


def inbound_deliver(message: InboundMessage) -> str:
    """Hand `message` to the configured consumer; returns its note for the stored webhook row.

    No handler configured: the message is recorded as unhandled (the raw request is kept anyway).
    """
    path = getattr(settings, "COMMS_INBOUND_MESSAGE_HANDLER", "")
    if not path:
        log.info("inbound %s from %s: no COMMS_INBOUND_MESSAGE_HANDLER, not routed", message.channel, message.sender)
        return "inbound message not routed (no handler configured)"
    return str(import_string(path)(message=message))


def normalise(message: AnymailInboundMessage, *, provider: str, webhook_id: int | None) -> InboundMessage:
    """Our InboundMessage for anymail's parsed mail: sender, the address it was sent to (the
    envelope recipient first, else the first conv+ address in To/Cc), text, attachments, thread."""
    sender = message.from_email.addr_spec if message.from_email else (message.envelope_sender or "")
    candidates = [message.envelope_recipient or ""] + [a.addr_spec for a in (*message.to, *message.cc)]
    for value in message.get_all("Delivered-To", []) + message.get_all("X-Original-To", []):
        candidates += [addr for _, addr in getaddresses([str(value)])]
    to = next((c for c in candidates if c.lower().startswith("conv+")), next((c for c in candidates if c), ""))
    media = tuple(InboundMedia(content=part.get_content_bytes(), content_type=part.get_content_type(),
                               filename=part.get_filename() or "") for part in message.attachments)
    headers = {name: str(message[name]) for name in ("In-Reply-To", "References") if message[name]}
    return InboundMessage(channel="email", provider=provider, sender=sender, to=to,
                          text=message.text or "", html=message.html or "", subject=message.subject or "",
                          provider_ref=str(message["Message-ID"] or "").strip(), media=media, headers=headers,
                          webhook_id=webhook_id)

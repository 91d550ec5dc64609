"""A local SMTP sink (aiosmtpd) for development: every message lands in a Maildir under var/mail.

It speaks real SMTP on 127.0.0.1, so the delivery engine runs exactly the code it runs against a
production relay. Tests subclass ``SinkHandler`` to script replies (451, 550, slow DATA).

Mail addressed to a conversation's reply address (``conv+<token>@COMMS_INBOUND_EMAIL_DOMAIN``) is
also handed to the inbound path the ESPs' inbound webhooks use (``webhooks.inbound.inbound_deliver``),
so replying to a conversation email works in development without any provider.
"""

from __future__ import annotations

import asyncio
import logging
import mailbox
import threading
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from anymail.inbound import AnymailInboundMessage
from django.conf import settings
from django.db import close_old_connections

from webhooks.inbound import inbound_deliver, normalise

log = logging.getLogger(__name__)


class SinkHandler:
    """Accepts everything; keeps messages in memory and, when given a maildir, on disk."""

    def __init__(self, maildir: Path | None = None, *, keep: bool = True, latency_ms: float = 0.0):
        # latency_ms: each DATA is answered this much later, like a real relay (30-150 ms), without
        # holding up other connections (an asyncio sleep): the benchmarks' stand-in for provider latency.
        self.latency_ms = latency_ms
        self.maildir = mailbox.Maildir(str(maildir), create=True) if maildir else None
        self.keep = keep  # in-memory copies, for tests; off for long-running and benchmark sinks
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # the bytes as received (DKIM verifies these, not a re-serialisation)
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.count += 1
            if self.keep:
                self.messages.append(message_from_bytes(raw))
                self.raw.append(raw)
            if self.maildir is not None:
                self.maildir.add(raw)
        log.debug("sink: %s -> %s", envelope.mail_from, ",".join(envelope.rcpt_tos))
        replies = [r for r in envelope.rcpt_tos if is_conversation_address(r)]
        if replies:
            # The ORM is synchronous: run it off the event loop's thread.
            await asyncio.to_thread(conversation_reply, raw, replies[0], envelope.mail_from)
        return "250 Message accepted for delivery"


def is_conversation_address(address: str) -> bool:
    local, _, domain = address.rpartition("@")
    if not local.lower().startswith("conv+"):
        return False  # checked first: ordinary mail never touches settings (a sink may run without Django)
    return domain.lower() == settings.COMMS_INBOUND_EMAIL_DOMAIN.lower()


def conversation_reply(raw: bytes, rcpt: str, mail_from: str) -> str:
    """Hand a mail sent to a conversation's reply address to the inbound path (as an ESP route would)."""
    close_old_connections()
    try:
        message = AnymailInboundMessage.parse_raw_mime_bytes(raw)
        message.envelope_recipient, message.envelope_sender = rcpt, mail_from
        return inbound_deliver(normalise(message, provider="smtp_sink", webhook_id=None))
    except Exception:  # the sink always accepts; a failed hand-off is logged, as a provider would retry
        log.exception("sink: reply to %s not handed to the conversation", rcpt)
        return "failed"
    finally:
        close_old_connections()


def start_sink(handler: SinkHandler, *, host: str = "127.0.0.1", port: int = 2525) -> Controller:
    # Messages up to 32 MB (the API's own cap is lower); no auth, loopback only.
    controller = Controller(handler, hostname=host, port=port, data_size_limit=32 * 1024 * 1024)
    controller.start()
    return controller

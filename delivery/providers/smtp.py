"""Email over SMTP: the default provider (the local sink in development).

Django's SMTP backend owns connection set-up (TLS/SSL, auth, timeouts); we drive the session
ourselves so every message gets its own SMTP reply code, which decides transient vs permanent
(RFC 5321 §4.2.1: 4yz is a transient negative completion, 5yz a permanent one). The message itself,
compliance headers included, is the email channel's (delivery.channels.email.build_email).
"""

from __future__ import annotations

import binascii
import functools
import re
import smtplib
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend

from comms.enums import Channel
from delivery.channels.email import (
    CENTER_PLACEHOLDER, build_email, from_address, thread_headers, message_id as email_message_id, message_preferences_url,
    message_unsubscribe_token, wants_unsubscribe,
)
from delivery.deliverability.dkim import SigningKey, sign as dkim_sign, signing_keys_for, unsigned_flush
from delivery.providers.base import Content, Provider, SendResult


_QP = b"Content-Transfer-Encoding: quoted-printable\r\n"


def _segments(wire: bytes) -> list[tuple[bytes, bytes]]:
    """The wire as raw runs and quoted-printable payloads (decoded). Django encodes a part with a line
    over 998 bytes as quoted-printable, whose soft line breaks can split a placeholder: substituting in
    the decoded text and encoding again per message keeps the shared rendering usable for such parts.
    Each segment is (its text, its encoded bytes if quoted-printable else b"")."""
    if _QP not in wire:
        return [(wire, b"")]
    boundary = re.search(rb'boundary="([^"]+)"', wire[:wire.find(b"\r\n\r\n")])
    out, at = [], 0
    while (header := wire.find(_QP, at)) >= 0:
        start = wire.find(b"\r\n\r\n", header) + 4
        end = wire.find(b"\r\n--" + boundary.group(1), start) if boundary else len(wire)
        end = len(wire) if end < 0 else end
        out += [(wire[at:start], b""), (binascii.a2b_qp(wire[start:end]), wire[start:end])]
        at = end
    return [*out, (wire[at:], b"")]


def _substitute(data: bytes, encoded: bytes, subs: list[tuple[str, str]]) -> bytes:
    if encoded and not any(placeholder.encode() in data for placeholder, _ in subs):
        return encoded  # a quoted-printable part without per-recipient values: as rendered
    for placeholder, value in subs:
        data = data.replace(placeholder.encode(), value.encode())
    if not encoded:
        return data
    # b2a_qp breaks soft lines with the line ending it sees first (LF when there is none): SMTP wants CRLF.
    return binascii.b2a_qp(data, istext=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _classify(code: int, text: str | bytes) -> SendResult:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if 400 <= code < 500:
        return SendResult.transient(str(code), detail)
    return SendResult.permanent(str(code), detail)


class _BoundBackend(EmailBackend):
    """Django's SMTP backend, its socket bound to a local address (smtplib's `source_address`)."""

    def __init__(self, *, source_address: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.source_address = (source_address, 0)

    @property
    def connection_class(self):
        return functools.partial(super().connection_class, source_address=self.source_address)


class SmtpProvider(Provider):
    name = "smtp"
    channel = Channel.EMAIL
    binds_source_address = True  # config "source_address": a pool's sending IP

    # Placeholders for the per-recipient parts of a cached MIME rendering (see _serialise).
    _TO = "comms-recipient@placeholder.invalid"
    _ID = "00000000-0000-0000-0000-000000000000"
    _UNSUB = "comms-unsubscribe-token-placeholder"
    _PREFS = f"https://placeholder.invalid/p/{CENTER_PLACEHOLDER}"  # the whole URL: a bare address gets /u/…

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        # A pool of open sessions: the engine sends many messages at once (delivery.services.inflight),
        # each on a session of its own, and a session goes back to the pool for the next message.
        self._idle: list[_Session] = []
        self._lock = threading.Lock()
        self._down: SendResult | None = None
        self._rendered: dict[tuple, tuple[str, bytes]] = {}

    # -- session ------------------------------------------------------------------------------------
    def _make_backend(self) -> EmailBackend:
        c = self.config
        kwargs = dict(
            host=c.get("host", settings.EMAIL_HOST), port=int(c.get("port", settings.EMAIL_PORT)),
            username=c.get("username", settings.EMAIL_HOST_USER),
            password=c.get("password", settings.EMAIL_HOST_PASSWORD),
            use_tls=c.get("use_tls", settings.EMAIL_USE_TLS), use_ssl=c.get("use_ssl", settings.EMAIL_USE_SSL),
            timeout=c.get("timeout", settings.EMAIL_TIMEOUT), fail_silently=False,
        )
        if c.get("source_address"):  # a pool's dedicated sending IP (delivery.deliverability.pools)
            return _BoundBackend(source_address=c["source_address"], **kwargs)
        return EmailBackend(**kwargs)

    # An idle session is probed with NOOP before use: relays drop idle clients (RFC 5321 §4.5.3.2.7
    # allows 5 minutes), and a send into a dead socket would cost the message a retry delay.
    IDLE_PROBE_SECONDS = 5.0

    def _checkout(self) -> "_Session | SendResult":
        """An open session from the pool (or a new one); a failed connect fails the rest of the batch
        fast (transient) instead of every message waiting for its own connect timeout."""
        if self._down is not None:
            return self._down
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is not None and session.usable(self.IDLE_PROBE_SECONDS):
            return session
        if session is not None:
            session.drop()
        session = _Session(self._make_backend())
        try:
            session.backend.open()
        except smtplib.SMTPResponseException as exc:
            self._down = SendResult.transient(str(exc.smtp_code), f"connect: {exc.smtp_error!r}")
        except (OSError, smtplib.SMTPException) as exc:
            self._down = SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        return self._down or session

    def _checkin(self, session: "_Session") -> None:
        if session.backend.connection is not None:
            with self._lock:
                self._idle.append(session)

    def release(self) -> None:
        """Keep the sessions for the next batch; forget per-batch state."""
        self._rendered.clear()
        self._down = None
        unsigned_flush()  # the batch's count of mail sent without DKIM, in one Redis call

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            try:
                session.backend.close()
            except Exception:  # closing a dead session must never fail the batch
                pass
        self._down = None
        self._rendered.clear()

    # -- send ---------------------------------------------------------------------------------------
    def build(self, message: Any, content: Content) -> EmailMultiAlternatives:
        return build_email(message, content, self.config)

    def _serialise(self, message: Any, content: Content) -> tuple[str, bytes]:
        """The wire bytes of `message`: (envelope sender, RFC 5322 bytes).

        A bulk batch sends one content to many addresses, and MIME generation is the costliest
        step of a send, so within one session the content is rendered once with placeholders and
        only the recipient and message id are substituted (ASCII addresses; others render fully).
        """
        if not message.recipient_address.isascii():
            email = self.build(message, content)
            return email.from_email, email.message().as_bytes(linesep="\r\n")
        unsubscribe = wants_unsubscribe(message)
        full, tracked = content, content.data.get("tracking")
        if tracked:  # click/open tracking (tracking.links): share the HTML with placeholders, substitute tokens
            content = replace(content, body_html=tracked["html"])
        footer = (getattr(message, "locale", ""), bool(getattr(message, "recipient_id", None))) if unsubscribe else ()
        key = (content.subject, content.body, content.body_html, message.metadata.get("from_email"),
               message.metadata.get("reply_to"), tuple(sorted(content.data.get("headers", {}).items())),
               tuple(sorted(thread_headers(message).items())), unsubscribe,
               footer)  # the links footer's language and whether it has a preference center link
        cached = self._rendered.get(key)
        if cached is None:
            if len(self._rendered) >= 512:  # many distinct contents (per-recipient templates): stay bounded
                self._rendered.clear()
            stand_in = type("StandIn", (), {"id": self._ID, "recipient_address": self._TO, "metadata": message.metadata,
                                            "tenant_id": message.tenant_id, "category": message.category,
                                            "locale": getattr(message, "locale", ""),
                                            "recipient_id": getattr(message, "recipient_id", None),
                                            "unsubscribe_token": self._UNSUB, "preferences_url": self._PREFS})()
            email = self.build(stand_in, content)
            segments = _segments(email.message().as_bytes(linesep="\r\n"))
            text = b"".join(data for data, _ in segments)
            if tracked and not all(p.encode() in text for p in tracked["tokens"]):
                segments = []  # a placeholder did not survive the rendering: this content renders per message
            if unsubscribe and not self._placeholders_intact(email, text):
                segments = []
            cached = self._rendered[key] = (email.from_email, segments)
        from_email, segments = cached
        if not segments:
            email = self.build(message, full)
            return email.from_email, email.message().as_bytes(linesep="\r\n")
        subs = [(self._TO, message.recipient_address), (self._ID, str(message.id)),
                *(tracked["tokens"].items() if tracked else ())]
        if unsubscribe:  # the token is per recipient (or per message): substituted like the address
            subs.append((self._UNSUB, message_unsubscribe_token(message)))
            if any(self._PREFS.encode() in data for data, _ in segments):
                subs.append((self._PREFS, message_preferences_url(message)))
        wire = b"".join(_substitute(data, encoded, subs) for data, encoded in segments)
        if max(map(len, wire.split(b"\r\n"))) > 998:
            # Tokens are longer than their placeholders: a line the 8bit rendering kept under SMTP's 998
            # limit (RFC 5321 4.5.3.1.6) may now exceed it; this message is encoded on its own.
            email = self.build(message, full)
            return email.from_email, email.message().as_bytes(linesep="\r\n")
        return from_email, wire

    def _placeholders_intact(self, email: EmailMultiAlternatives, text: bytes) -> bool:
        """Every per-recipient link placeholder of the parts survived the rendering whole."""
        parts = [email.body, *(alt[0] for alt in email.alternatives), *map(str, email.extra_headers.values())]
        return all(text.count(p.encode()) == sum(part.count(p) for part in parts) for p in (self._UNSUB, self._PREFS))

    def prepare(self, message: Any, content: Content) -> list[SigningKey]:
        """On the engine's thread: the DKIM keys aligned with the From domain (a cached database read)."""
        return signing_keys_for(tenant_id=message.tenant_id, from_email=from_address(message, self.config))

    def send_prepared(self, message: Any, content: Content, prepared: Any) -> SendResult:
        session = self._checkout()
        if isinstance(session, SendResult):
            return session
        try:
            return self._send_on(session, message, content, prepared or [])
        finally:
            self._checkin(session)

    def send(self, message: Any, content: Content) -> SendResult:
        return self.send_prepared(message, content, self.prepare(message, content))

    def _send_on(self, session: "_Session", message: Any, content: Content, keys: list[SigningKey]) -> SendResult:
        message_id = email_message_id(message)
        connection = session.backend.connection
        session.last_used = time.monotonic()
        from_email, wire = self._serialise(message, content)
        # Signed per message, after the per-recipient substitution: To, Message-ID and the unsubscribe
        # header differ per recipient, so the header signature cannot be shared (RFC 6376 §3.7).
        wire = dkim_sign(wire, keys)
        try:
            refused = connection.sendmail(from_email, [message.recipient_address], wire)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _classify(code, text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            return _classify(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPServerDisconnected as exc:
            session.drop()
            return SendResult.transient("disconnected", str(exc), maybe_accepted=True)
        except smtplib.SMTPResponseException as exc:
            session.drop()
            return _classify(exc.smtp_code, exc.smtp_error)
        except (OSError, socket.timeout, smtplib.SMTPException) as exc:
            session.drop()
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        if refused:  # only one recipient per message, so a partial refusal cannot happen; be safe
            code, text = next(iter(refused.values()))
            return _classify(code, text)
        return SendResult.sent(message_id)


class _Session:
    """One SMTP connection of the pool, used by one send at a time."""

    def __init__(self, backend: EmailBackend):
        self.backend = backend
        self.last_used = time.monotonic()

    def usable(self, idle_probe_seconds: float) -> bool:
        """Still open: smtplib has not closed it (e.g. after a 421), and a session idle for a while
        answers NOOP."""
        connection = self.backend.connection
        if connection is None or connection.sock is None:
            return False
        if time.monotonic() - self.last_used < idle_probe_seconds:
            return True
        try:
            return connection.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def drop(self) -> None:
        """Forget a broken connection; the pool does not take this session back."""
        if self.backend.connection is not None:
            try:
                self.backend.connection.close()
            except (OSError, smtplib.SMTPException):
                pass
            self.backend.connection = None

"""Spam scoring with SpamAssassin over the spamc protocol (spamd), for previews, submits and the
optional send-time gate for marketing mail.

Why spamd and not a heuristic of our own: mailbox providers' filters descend from the same rule
families (SpamAssassin's body/header rules, HTML-to-text ratio, shouting subjects), so its score is
the closest thing to a second opinion an author can get before a campaign goes out. spamd runs local
rules only (started with ``-L``): no DNS blocklist lookups from here, the score is about content.

templates_app sits below delivery, so it reaches ``spam_score`` through COMMS_SPAM_SCORER.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from aiospamc.client import Client
from aiospamc.connections import TcpConnectionManager, Timeout
from aiospamc.requests import Request
from django.conf import settings

from comms.enums import LogEvent, Status
from delivery.providers.base import SendResult
from delivery.services.outcomes import Outcome

# A REPORT body line: " 1.2 MISSING_DATE           Missing Date: header" (score, rule, description).
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]{2,})\s+(.*)$")


@dataclass
class SpamResult:
    """The verdict as shown to authors and approvers; ``available`` False means spamd did not answer."""

    available: bool
    score: float | None = None
    threshold: float | None = None
    rules: list[dict] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        if not self.available:
            return "spam check unavailable"
        return f"spam score {self.score:.1f} (threshold {self.threshold:.1f})"


def build_message(*, subject: str, html: str, text: str, from_addr: str = "", to_addr: str = "") -> bytes:
    """The email as spamd would see it from us: the same MIME shape the SMTP path builds
    (multipart/alternative with a text and an HTML part), with Date and Message-ID so rules that
    flag their absence do not add noise to the author's score."""
    msg = EmailMessage()
    msg["From"] = from_addr or settings.DEFAULT_FROM_EMAIL
    msg["To"] = to_addr or "preview@example.com"
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=(msg["From"].rpartition("@")[2].strip("> ") or "localhost"))
    msg.set_content(text or " ")
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def parse_report(body: str) -> list[dict]:
    """Rule hits from spamd's REPORT body, highest score first."""
    rules = []
    for line in body.splitlines():
        match = _RULE.match(line)
        if match:
            rules.append({"name": match.group(2), "score": float(match.group(1)),
                          "description": match.group(3).strip()})
    return sorted(rules, key=lambda r: -r["score"])


async def _report(raw: bytes, host: str, port: int, timeout: float):
    """A spamc REPORT request over plain TCP. aiospamc's one-call frontend builds a default TLS context on
    every call, even for plain TCP (~170 ms of CPU each, measured by bench/spam.py), so the client is
    put together from its parts with no TLS context."""
    limit = Timeout(total=timeout, connection=timeout, response=timeout)
    client = Client(TcpConnectionManager(host, port, None, limit))
    return await client.request(Request("REPORT", body=raw))


def _run(coro):
    """Run a coroutine from sync code, also when the caller already runs an event loop (ASGI)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def spam_check_raw(raw: bytes) -> SpamResult:
    """Score a whole RFC 5322 message; never raises (spamd down is a result, not an exception)."""
    host, port = settings.COMMS_SPAMD_HOST, settings.COMMS_SPAMD_PORT
    if not host:
        return SpamResult(available=False, error="spamd is not configured (COMMS_SPAMD_HOST is empty)")
    try:
        response = _run(_report(raw, host, port, settings.COMMS_SPAMD_TIMEOUT))
    except Exception as exc:  # aiospamc raises its own error tree plus OSError/timeouts: all mean "no verdict"
        return SpamResult(available=False, error=f"{type(exc).__name__}: {exc}"[:300])
    spam = response.headers.get("Spam")
    score = getattr(spam, "score", None)
    threshold = getattr(spam, "threshold", None)
    if score is None:
        return SpamResult(available=False, error="spamd answered without a Spam header")
    body = response.body.decode("utf-8", "replace") if response.body else ""
    return SpamResult(available=True, score=float(score), threshold=float(threshold), rules=parse_report(body))


def spam_score(*, subject: str, html: str, text: str, from_addr: str = "", to_addr: str = "") -> SpamResult:
    """Score rendered email content (the COMMS_SPAM_SCORER entry point templates_app calls)."""
    return spam_check_raw(build_message(subject=subject, html=html, text=text, from_addr=from_addr, to_addr=to_addr))


# --- send-time gate --------------------------------------------------------------------------------------

HOLD_CODE = "COMMS_SPAM_HOLD"
UNAVAILABLE_CODE = "COMMS_SPAM_UNAVAILABLE"
# A campaign sends one content to many rows: score each distinct content once per process (bounded).
_verdicts: dict[str, tuple[float, SpamResult]] = {}
_VERDICT_TTL = 600.0


def _content_verdict(subject: str, html: str, text: str) -> SpamResult:
    key = hashlib.sha256("\x00".join((subject, html, text)).encode()).hexdigest()
    hit = _verdicts.get(key)
    if hit and hit[0] > time.monotonic() and hit[1].available:
        return hit[1]
    result = spam_score(subject=subject, html=html, text=text)
    if len(_verdicts) > 1024:
        _verdicts.clear()
    _verdicts[key] = (time.monotonic() + _VERDICT_TTL, result)
    return result


def send_gate(message, content, *, now: datetime):
    """The outcome that holds a marketing email whose content scores above COMMS_SPAM_GATE_THRESHOLD
    (or whose score cannot be taken when COMMS_SPAM_GATE_HOLD_WHEN_DOWN), else None (send it).

    A hold is 'deferred' with a reason code and a retry time, never a failure: the row waits, spends
    no attempt, and goes out once the content is fixed or the threshold changed (nothing lost)."""
    threshold = settings.COMMS_SPAM_GATE_THRESHOLD
    if not threshold or message.channel != "email" or message.category != "marketing":
        return None
    verdict = _content_verdict(content.subject, content.body_html, content.body)
    if verdict.available and verdict.score is not None and verdict.score < threshold:
        return None
    if not verdict.available and not settings.COMMS_SPAM_GATE_HOLD_WHEN_DOWN:
        return None
    if verdict.available:
        code = HOLD_CODE
        reason = f"spam score {verdict.score:.1f} >= gate {threshold:.1f}: " + ", ".join(
            r["name"] for r in verdict.rules if r["score"] > 0)[:400]
    else:
        code, reason = UNAVAILABLE_CODE, f"spam check unavailable ({verdict.error})"[:500]
    return Outcome(message, Status.DEFERRED, LogEvent.DEFERRED, SendResult.transient(code, reason), "", now,
                   next_at=now + timedelta(seconds=settings.COMMS_SPAM_GATE_HOLD_SECONDS), attempt_delta=-1,
                   counter="deferred", counts_lost=False)

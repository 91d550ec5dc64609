"""Click and open tracking for email HTML: link rewriting at send time, tokens, UTM.

A tracked link is ``/c/{token}``: the token names the message and the link's position in the
message's stored HTML and carries an HMAC over (message, index, url). The redirect target is
always read back from the stored content, never from the request, so there is nothing to turn
into an open redirect; a token whose MAC does not match the stored URL is refused. The open pixel
is ``/o/{token}.gif`` with a MAC over the message id.

Tracking is off for sensitive categories (security, legal: seed 001), for templates listed in
COMMS_TRACKING_OFF_TEMPLATES and for recipients with ``attributes.do_not_track``; such emails
carry ``<meta name="user-dnt" content="true">`` instead. UTM parameters (campaign, medium,
template only: no personal data) are added to marketing links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import uuid
from dataclasses import replace
from functools import lru_cache
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings

from comms.enums import Category, Channel
from delivery.providers.base import Content

# <a ... href="..."> (MJML output quotes attributes); group 3 is the raw attribute value.
_A_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_NOTRACK = re.compile(r"\bdata-(?:comms-)?notrack\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _key() -> bytes:
    secret = settings.COMMS_TRACKING_SECRET or settings.SECRET_KEY
    return hashlib.sha256(b"comms-tracking:" + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(*parts: str) -> str:
    return _b64(hmac.new(_key(), "|".join(parts).encode(), hashlib.sha256).digest()[:12])


def click_token(message_id: uuid.UUID, index: int, url: str) -> str:
    return f"{_b64(message_id.bytes + index.to_bytes(2, 'big'))}.{_mac('c', str(message_id), str(index), url)}"


def open_token(message_id: uuid.UUID) -> str:
    return f"{_b64(message_id.bytes)}.{_mac('o', str(message_id))}"


def parse_click_token(token: str) -> tuple[uuid.UUID, int, str] | None:
    head, _, mac = token.partition(".")
    try:
        raw = _unb64(head)
    except (ValueError, TypeError):
        return None
    if len(raw) != 18 or not mac:
        return None
    return uuid.UUID(bytes=raw[:16]), int.from_bytes(raw[16:], "big"), mac


def click_mac_ok(message_id: uuid.UUID, index: int, url: str, mac: str) -> bool:
    return hmac.compare_digest(_mac("c", str(message_id), str(index), url), mac)


def parse_open_token(token: str) -> uuid.UUID | None:
    head, _, mac = token.partition(".")
    try:
        raw = _unb64(head)
    except (ValueError, TypeError):
        return None
    if len(raw) != 16:
        return None
    message_id = uuid.UUID(bytes=raw)
    return message_id if hmac.compare_digest(_mac("o", str(message_id)), mac) else None


def safe_destination(url: str) -> bool:
    """Only absolute http(s) URLs with a plain host: no scheme-relative '//host', no backslashes
    (browsers read '\\' as '/'), no userinfo ('https://good@evil'), no control characters."""
    if not url or any(c in url for c in "\\\r\n\t\x00") or any(ord(c) < 32 for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc


def stored_links(body_html: str) -> list[str]:
    """Every <a href> of a stored HTML body, in order, unescaped: index i is link i of the email."""
    return [html.unescape(m.group(3)).strip() for m in _A_HREF.finditer(body_html or "")]


def with_utm(url: str, *, campaign: str, template: str) -> str:
    """UTM parameters for marketing links (existing utm_* from the author win)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    have = {k for k, _ in query}
    extra = [(k, v) for k, v in (("utm_source", "comms"), ("utm_medium", "email"), ("utm_campaign", campaign),
                                  ("utm_content", template)) if v and k not in have]
    if not extra:
        return url
    return urlunsplit(parts._replace(query=urlencode(query + extra)))


def utm_for(message: Any) -> dict[str, str] | None:
    if message.category != Category.MARKETING:
        return None
    campaign = str((message.metadata or {}).get("campaign_id") or message.template_key or "")
    return {"campaign": campaign[:100], "template": (message.template_key or "")[:100]}


def _public(path: str) -> str:
    return f"{settings.COMMS_PUBLIC_URL.rstrip('/')}{path}"


def _trackable(url: str) -> bool:
    if not safe_destination(url):
        return False
    return not url.startswith(settings.COMMS_PUBLIC_URL.rstrip("/") + "/")  # our own links (unsubscribe, c/o)


def rewrite_html(body_html: str, *, message_id: uuid.UUID, track: bool, utm: dict[str, str] | None) -> str:
    """Rewrite links (tracking and/or UTM) and add the open pixel; index = position among all <a href>."""
    counter = iter(range(1 << 16))

    def replace_link(m: re.Match) -> str:
        index = next(counter)
        url = html.unescape(m.group(3)).strip()
        if (track and _NOTRACK.search(m.group(1))) or not _trackable(url):
            return m.group(0)
        if track:
            new = _public(f"/c/{click_token(message_id, index, url)}")
        elif utm:
            new = html.escape(with_utm(url, **utm), quote=True)
        else:
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{new}{m.group(2)}"

    out = _A_HREF.sub(replace_link, body_html) if (track or utm) else body_html
    if track:
        pixel = (f'<img src="{_public(f"/o/{open_token(message_id)}.gif")}" width="1" height="1" alt="" '
                 'style="display:block;width:1px;height:1px;border:0" />')
        out, n = _BODY_END.subn(lambda m: pixel + m.group(0), out, count=1)
        if not n:
            out += pixel
    return out


def _dnt_meta(body_html: str) -> str:
    meta = '<meta name="user-dnt" content="true">'
    out, n = _HEAD_END.subn(lambda m: meta + m.group(0), body_html, count=1)
    return out if n else body_html


class Tracker:
    """Decides tracking for one claimed batch (one query for do-not-track recipients) and rewrites."""

    def __init__(self, messages: Iterable[Any]):
        self.enabled = settings.COMMS_TRACKING_ENABLED
        ids = {m.recipient_id for m in messages if m.channel == Channel.EMAIL and m.recipient_id}
        self.dnt: set = set()
        if self.enabled and ids:
            from comms.models import Recipient

            self.dnt = set(Recipient.objects.filter(id__in=ids, attributes__do_not_track=True)
                           .values_list("id", flat=True))

    def tracking_allowed(self, message: Any) -> bool:
        return (self.enabled and message.category not in settings.COMMS_TRACKING_SENSITIVE_CATEGORIES
                and message.template_key not in settings.COMMS_TRACKING_OFF_TEMPLATES
                and message.recipient_id not in self.dnt and not (message.metadata or {}).get("do_not_track"))

    def apply(self, message: Any, content: Content) -> Content:
        if message.channel != Channel.EMAIL or not content.body_html:
            return content
        track = self.tracking_allowed(message)
        utm = utm_for(message)
        body_html = rewrite_html(content.body_html, message_id=message.id, track=track, utm=utm)
        if not track:
            body_html = _dnt_meta(body_html)
        return replace(content, body_html=body_html)

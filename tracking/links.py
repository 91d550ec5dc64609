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
from comms.models import Recipient
from delivery.providers.base import Content

# <a ... href="..."> (MJML output quotes attributes); group 3 is the raw attribute value.
_A_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_TAG_SPACE = re.compile(r"(<[a-zA-Z][a-zA-Z0-9]*)[ \t]+")
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
        parts.port  # noqa: B018 - a port out of 0-65535 (ValueError) is no destination either
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


# Fixed per-batch placeholders: a batch's emails share one HTML with these, and each message gets
# its own tokens substituted (see Tracker.apply and the SMTP provider's shared MIME rendering).
_CLICK_PH = "zzcommsclick{:04d}zz"
_OPEN_PH = "zzcommsopenzz"


def _shared_html(body_html: str, *, utm: dict[str, str] | None) -> tuple[str, list[tuple[int, str]]]:
    """The tracked HTML with placeholders instead of tokens, and (index, url) of each tracked link.

    Index = position among all <a href> of the stored HTML, which is what the redirect reads back.
    """
    counter = iter(range(1 << 16))
    tracked: list[tuple[int, str]] = []

    def replace_link(m: re.Match) -> str:
        index = next(counter)
        url = html.unescape(m.group(3)).strip()
        if _NOTRACK.search(m.group(1)):
            if utm and _trackable(url):
                return f"{m.group(1)}{m.group(2)}{html.escape(with_utm(url, **utm), quote=True)}{m.group(2)}"
            return m.group(0)
        if not _trackable(url):
            return m.group(0)
        tracked.append((index, url))
        return f"{m.group(1)}{m.group(2)}{_public('/c/' + _CLICK_PH.format(len(tracked) - 1))}{m.group(2)}"

    out = _A_HREF.sub(replace_link, body_html)
    pixel = (f'<img src="{_public("/o/" + _OPEN_PH + ".gif")}" width="1" height="1" alt="" '
             'style="display:block;width:1px;height:1px;border:0" />')
    out, n = _BODY_END.subn(lambda m: pixel + m.group(0), out, count=1)
    if not n:
        out += pixel
    if any(len(line) > 900 for line in out.splitlines()):
        # Lines over 998 bytes make the MIME part quoted-printable, whose soft line breaks can split a
        # placeholder; a newline inside a start tag (where whitespace means nothing) keeps lines short.
        out = _TAG_SPACE.sub(lambda m: m.group(1) + "\n", out)
    return out, tracked


def _utm_html(body_html: str, utm: dict[str, str]) -> str:
    def replace_link(m: re.Match) -> str:
        url = html.unescape(m.group(3)).strip()
        if not _trackable(url):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{html.escape(with_utm(url, **utm), quote=True)}{m.group(2)}"

    return _A_HREF.sub(replace_link, body_html)


def tokens_for(message_id: uuid.UUID, tracked: list[tuple[int, str]]) -> dict[str, str]:
    """This message's tokens for the shared placeholders (the same values click_token/open_token give,
    with the id converted once: this runs for every tracked email)."""
    mid, raw = str(message_id), message_id.bytes
    key = _key()
    subs = {}
    for i, (index, url) in enumerate(tracked):
        mac = _b64(hmac.new(key, f"c|{mid}|{index}|{url}".encode(), hashlib.sha256).digest()[:12])
        subs[_CLICK_PH.format(i)] = f"{_b64(raw + index.to_bytes(2, 'big'))}.{mac}"
    subs[_OPEN_PH] = f"{_b64(raw)}.{_mac('o', mid)}"
    return subs


def substitute(text: str, subs: dict[str, str]) -> str:
    for placeholder, value in subs.items():
        text = text.replace(placeholder, value)
    return text


def rewrite_html(body_html: str, *, message_id: uuid.UUID, track: bool, utm: dict[str, str] | None) -> str:
    """Rewrite links (tracking and/or UTM) and add the open pixel for one message."""
    if track:
        shared, tracked = _shared_html(body_html, utm=utm)
        return substitute(shared, tokens_for(message_id, tracked))
    return _utm_html(body_html, utm) if utm else body_html


def _dnt_meta(body_html: str) -> str:
    meta = '<meta name="user-dnt" content="true">'
    out, n = _HEAD_END.subn(lambda m: meta + m.group(0), body_html, count=1)
    return out if n else body_html


class Tracker:
    """Decides tracking for one claimed batch (one query for do-not-track recipients) and rewrites."""

    def __init__(self, messages: Iterable[Any]):
        self.enabled = settings.COMMS_TRACKING_ENABLED
        self._shared: dict[tuple, Any] = {}  # rewritten HTML per distinct content in this batch
        ids = {m.recipient_id for m in messages if m.channel == Channel.EMAIL and m.recipient_id}
        self.dnt: set = set()
        if self.enabled and ids:
            self.dnt = set(Recipient.objects.filter(id__in=ids, attributes__do_not_track=True)
                           .values_list("id", flat=True))

    def tracking_allowed(self, message: Any) -> bool:
        return (self.enabled and message.category not in settings.COMMS_TRACKING_SENSITIVE_CATEGORIES
                and message.template_key not in settings.COMMS_TRACKING_OFF_TEMPLATES
                and message.recipient_id not in self.dnt and not (message.metadata or {}).get("do_not_track"))

    def apply(self, message: Any, content: Content) -> Content:
        """The content to send. Tracked emails carry ``data["tracking"]``: the HTML shared by the batch
        (placeholders) and this message's tokens, so a provider can render MIME once per batch."""
        if message.channel != Channel.EMAIL or not content.body_html:
            return content
        utm = utm_for(message)
        if not self.tracking_allowed(message):
            key = ("plain", content.body_html, tuple(sorted(utm.items())) if utm else None)
            body_html = self._shared.get(key)
            if body_html is None:
                body_html = self._shared[key] = _dnt_meta(_utm_html(content.body_html, utm) if utm else
                                                          content.body_html)
            return replace(content, body_html=body_html)
        key = ("tracked", content.body_html, tuple(sorted(utm.items())) if utm else None)
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = _shared_html(content.body_html, utm=utm)
        html_shared, tracked = shared
        subs = tokens_for(message.id, tracked)
        return replace(content, body_html=substitute(html_shared, subs),
                       data={**content.data, "tracking": {"html": html_shared, "tokens": subs}})

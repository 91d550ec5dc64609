"""Signed links for end users: one-click unsubscribe, the preference center, double opt-in.

Django signing (HMAC with SECRET_KEY), one salt per purpose so a token for one page never opens
another, and an expiry of COMMS_PREFERENCE_TOKEN_DAYS (default 180; never below 60: CAN-SPAM wants an
unsubscribe link to keep working for at least 30 days after the send, RFC 8058 senders keep them
much longer). Tokens carry ids only, never an address: URLs end up in logs and browser histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing

from comms import errors

UNSUBSCRIBE_SALT = "comms.preferences.unsubscribe"
CENTER_SALT = "comms.preferences.center"
CONFIRM_SALT = "comms.preferences.confirm"
MIN_DAYS = 60


def max_age() -> int:
    return max(MIN_DAYS, settings.COMMS_PREFERENCE_TOKEN_DAYS) * 86400


@dataclass(frozen=True)
class UnsubscribeClaims:
    tenant_id: str
    recipient_id: str = ""   # a directory recipient, or
    message_id: str = ""     # a message sent to a bare address (no directory entry)
    category: str = ""
    channel: str = "email"


def unsubscribe_token(*, recipient: Any = None, category: str, message: Any = None, channel: str = "email") -> str:
    """Token for `/u/<token>`, scoped to a recipient (or, for a bare address, the message) and category."""
    if recipient is not None:
        claims = {"t": str(recipient.tenant_id), "r": str(recipient.pk)}
    elif message is not None:
        claims = {"t": str(message.tenant_id), "m": str(message.id)}
    else:
        raise ValueError("an unsubscribe token needs a recipient or a message")
    claims["c"] = category
    if channel != "email":
        claims["ch"] = channel
    return signing.dumps(claims, salt=UNSUBSCRIBE_SALT, compress=True)


def _load(token: str, salt: str) -> dict:
    try:
        claims = signing.loads((token or "").strip(), salt=salt, max_age=max_age())
    except signing.SignatureExpired:
        raise errors.InvalidToken("This link has expired.", details={"reason": "expired"}) from None
    except signing.BadSignature:
        raise errors.InvalidToken("This link is not valid.", details={"reason": "bad_signature"}) from None
    if not isinstance(claims, dict) or "t" not in claims:
        raise errors.InvalidToken("This link is not valid.", details={"reason": "malformed"})
    return claims


def unsubscribe_claims(token: str) -> UnsubscribeClaims:
    c = _load(token, UNSUBSCRIBE_SALT)
    return UnsubscribeClaims(tenant_id=c["t"], recipient_id=c.get("r", ""), message_id=c.get("m", ""),
                             category=c.get("c", ""), channel=c.get("ch", "email"))


def preference_center_token(*, recipient: Any) -> str:
    return signing.dumps({"t": str(recipient.tenant_id), "r": str(recipient.pk)}, salt=CENTER_SALT, compress=True)


def preference_center_claims(token: str) -> tuple[str, str]:
    c = _load(token, CENTER_SALT)
    if "r" not in c:
        raise errors.InvalidToken("This link is not valid.", details={"reason": "malformed"})
    return c["t"], c["r"]


def confirm_token(*, subscription: Any) -> str:
    return signing.dumps({"t": str(subscription.tenant_id), "s": subscription.pk}, salt=CONFIRM_SALT, compress=True)


def confirm_claims(token: str) -> tuple[str, int]:
    c = _load(token, CONFIRM_SALT)
    if "s" not in c:
        raise errors.InvalidToken("This link is not valid.", details={"reason": "malformed"})
    return c["t"], int(c["s"])


def public_url(path: str) -> str:
    return settings.COMMS_PUBLIC_URL.rstrip("/") + path


def unsubscribe_url(token: str) -> str:
    return public_url(f"/u/{token}")


def preference_center_url(*, recipient: Any) -> str:
    return public_url(f"/p/{preference_center_token(recipient=recipient)}")

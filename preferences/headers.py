"""List-Unsubscribe headers for e-mail (RFC 2369 + RFC 8058 one-click).

Every non-critical e-mail carries ``List-Unsubscribe: <https://…/u/<token>>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``: mailbox providers (Gmail and Yahoo require
it of bulk senders since 2024) then show an unsubscribe button that POSTs to the URL with no
cookie, no login and no page. Critical mail (security, legal, receipts) carries none: it cannot be
unsubscribed from, and offering a button that does nothing would mislead.
"""

from __future__ import annotations

from typing import Any

from preferences import catalogue
from preferences.tokens import unsubscribe_url

ONE_CLICK = "List-Unsubscribe=One-Click"


def message_unsubscribe_token(message: Any) -> str:
    """The token for a message: its recipient + category, or (bare address) the message itself."""
    from django.core import signing

    from preferences.tokens import UNSUBSCRIBE_SALT

    claims = {"t": str(message.tenant_id), "c": message.category}
    if getattr(message, "recipient_id", None):
        claims["r"] = str(message.recipient_id)
    else:
        claims["m"] = str(message.id)
    return signing.dumps(claims, salt=UNSUBSCRIBE_SALT, compress=True)


def wants_unsubscribe(message: Any) -> bool:
    tenant_id = getattr(message, "tenant_id", None)
    return tenant_id is not None and not catalogue.category(tenant_id, getattr(message, "category", "")).critical


def list_unsubscribe_headers(message: Any, token: str | None = None) -> dict[str, str]:
    """The two headers for `message` ({} for critical categories). `token` overrides the computed
    one (the SMTP provider renders one MIME template per batch with a placeholder)."""
    if not wants_unsubscribe(message):
        return {}
    url = unsubscribe_url(token or message_unsubscribe_token(message))
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}

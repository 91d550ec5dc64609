"""Email channel policy: the RFC 5322 message every email vendor sends, compliance parts included.

Whatever carries the mail (our SMTP session, an ESP's HTTP API through django-anymail), the message
is the same: a Message-ID stable across retries (so a retried or failed-over send is recognisably
the same mail), ``X-Comms-Message-Id`` for support, the template's headers, and for non-critical
mail the RFC 2369 ``List-Unsubscribe`` and RFC 8058 ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
headers (Gmail and Yahoo require them of bulk senders since 2024) plus the visible unsubscribe and
preference links in the body. A vendor calls ``build_email`` and only decides how the bytes travel.

The headers are not added to the content by ``prepare_content``: the unsubscribe token is per
recipient, and the SMTP vendor renders one MIME message per content and swaps per-recipient parts
(address, message id, tokens) into it, which needs the content itself to stay the same across a batch.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from delivery.providers.base import Content
from preferences.headers import (  # noqa: F401  (re-exported: the compliance names every email vendor may use)
    CENTER_PLACEHOLDER, TOKEN_PLACEHOLDER, body_with_links, list_unsubscribe_headers, message_preferences_url,
    message_unsubscribe_token, wants_unsubscribe,
)


def message_id(message: Any) -> str:
    """The Message-ID header of `message`: the same on every attempt, whichever vendor sends it."""
    return f"<{message.id}@{settings.COMMS_MESSAGE_ID_DOMAIN}>"


def compliance_headers(message: Any) -> dict[str, str]:
    """The headers every email vendor must send for `message`, before the template's own."""
    return {
        "Message-ID": message_id(message),
        "X-Comms-Message-Id": str(message.id),
        **list_unsubscribe_headers(message, getattr(message, "unsubscribe_token", None)),
    }


# Threading headers (RFC 5322 section 3.6.4) a sender may set per message through its metadata
# (conversations: every mail of a conversation refers to the conversation's root Message-ID).
THREAD_HEADERS = ("In-Reply-To", "References")


def thread_headers(message: Any) -> dict[str, str]:
    """The allowed threading headers from ``metadata['email_headers']`` (nothing else passes)."""
    given = (getattr(message, "metadata", None) or {}).get("email_headers") or {}
    return {name: str(given[name])[:900] for name in THREAD_HEADERS if isinstance(given, dict) and given.get(name)}


def from_address(message: Any, config: dict[str, Any]) -> str:
    """The From of `message`: the provider's configured sender, else the message's, else the default
    (the DKIM signer picks its key by this address's domain)."""
    return config.get("from_email") or message.metadata.get("from_email") or settings.DEFAULT_FROM_EMAIL


def build_email(message: Any, content: Content, config: dict[str, Any]) -> EmailMultiAlternatives:
    """The RFC 5322 message every email provider sends: stable Message-ID across retries."""
    from_email = from_address(message, config)
    headers = {**compliance_headers(message), **thread_headers(message), **content.data.get("headers", {})}
    # Non-critical mail shows its unsubscribe and preferences links in the body too (a footer unless the
    # template placed {{unsubscribe_url}} / {{preferences_url}} itself).
    body, body_html = body_with_links(message, content.body, content.body_html)
    email = EmailMultiAlternatives(
        subject=content.subject, body=body, from_email=from_email, to=[message.recipient_address],
        headers=headers, reply_to=[message.metadata["reply_to"]] if message.metadata.get("reply_to") else None,
    )
    if body_html:
        email.attach_alternative(body_html, "text/html")
    return email


def prepare_content(message: Any, content: Content) -> Content:
    """Email content reaches the vendor as rendered: its compliance parts are added by ``build_email``
    (see the module docstring for why not here)."""
    return content

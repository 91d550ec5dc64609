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
    # No compression: the claims are too small to shrink, and this runs once per e-mail sent.
    return signing.dumps(claims, salt=UNSUBSCRIBE_SALT)


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


# --- the visible unsubscribe / preferences links in the body ---------------------------------------
# Templates get {{unsubscribe_url}} and {{preferences_url}}: URLs holding these placeholders, rendered
# once per version and personalised at send time (build_email; the SMTP provider's cached MIME swaps
# them like the recipient address). The unsubscribe link is the List-Unsubscribe header's signed token.
TOKEN_PLACEHOLDER = "comms-unsubscribe-token-placeholder"
CENTER_PLACEHOLDER = "comms-preferences-token-placeholder"


def _placeholder_urls() -> tuple[str, str]:
    from preferences.tokens import public_url

    return unsubscribe_url(TOKEN_PLACEHOLDER), public_url(f"/p/{CENTER_PLACEHOLDER}")


def link_variables() -> dict[str, str]:
    """The template variables for the links (placeholders until the message is sent)."""
    unsubscribe, center = _placeholder_urls()
    return {"unsubscribe_url": unsubscribe, "preferences_url": center}


def message_preferences_url(message: Any) -> str:
    """The preference center of the message's recipient; for a bare address (no directory entry, so no
    preference center) the unsubscribe page, which is what that person can change."""
    from django.core import signing

    from preferences.tokens import CENTER_SALT, public_url

    if not getattr(message, "recipient_id", None):
        return unsubscribe_url(getattr(message, "unsubscribe_token", None) or message_unsubscribe_token(message))
    token = signing.dumps({"t": str(message.tenant_id), "r": str(message.recipient_id)}, salt=CENTER_SALT,
                          compress=True)
    return public_url(f"/p/{token}")


def personalise_links(text: str, *, unsubscribe: str, preferences: str) -> str:
    """Swap the placeholder URLs for the message's own (whole URLs, so the path may differ)."""
    if CENTER_PLACEHOLDER not in text and TOKEN_PLACEHOLDER not in text:
        return text
    placeholder_unsubscribe, placeholder_center = _placeholder_urls()
    return text.replace(placeholder_center, preferences).replace(placeholder_unsubscribe, unsubscribe)


def _footer_labels(message: Any) -> tuple[str, str]:
    from django.utils import translation

    with translation.override((getattr(message, "locale", "") or "en").lower()):
        return translation.gettext("Unsubscribe"), translation.gettext("Manage all preferences")


def body_with_links(message: Any, body: str, body_html: str) -> tuple[str, str]:
    """The e-mail body and HTML with the links personalised, and a footer carrying them appended to each
    part that does not show them itself. Critical categories (security, legal, receipts) get none."""
    if not wants_unsubscribe(message):
        return body, body_html
    from django.utils.html import escape

    unsubscribe = unsubscribe_url(getattr(message, "unsubscribe_token", None) or message_unsubscribe_token(message))
    preferences = getattr(message, "preferences_url", None) or message_preferences_url(message)
    leave, manage = _footer_labels(message)
    center = bool(getattr(message, "recipient_id", None))  # a bare address has no preference center
    if body and TOKEN_PLACEHOLDER not in body and CENTER_PLACEHOLDER not in body:
        body = f"{body.rstrip()}\n\n-- \n{leave}: {unsubscribe}\n" + (f"{manage}: {preferences}\n" if center else "")
    if body_html and TOKEN_PLACEHOLDER not in body_html and CENTER_PLACEHOLDER not in body_html:
        link = '<a href="{}" style="color:#57606a">{}</a>'
        footer = ('\n<div class="comms-footer" style="margin:24px 0 8px;font:12px/1.5 sans-serif;color:#57606a;'
                  'text-align:center">' + link.format(escape(unsubscribe), escape(leave))
                  + (" &middot; " + link.format(escape(preferences), escape(manage)) if center else "") + "</div>\n")
        at = body_html.lower().rfind("</body>")
        body_html = body_html[:at] + footer + body_html[at:] if at >= 0 else body_html + footer
    return (personalise_links(body, unsubscribe=unsubscribe, preferences=preferences),
            personalise_links(body_html, unsubscribe=unsubscribe, preferences=preferences))

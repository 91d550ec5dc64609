"""SMS channel policy: what every SMS vendor must carry, applied before any vendor sees the text.

CTIA's Messaging Principles and Best Practices (and the TCPA behind them) expect marketing texts to
say how to stop and how to get help; carriers filter 10DLC/toll-free traffic that does not. The
footer is added here, once, so Twilio, SNS and any later SMS vendor send the same bytes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from comms.enums import Category
from delivery.providers.base import Content

# CTIA/TCPA: marketing texts say how to stop and get help (carriers filter those that do not).
STOP_FOOTER = {"en": "Reply STOP to opt out, HELP for help.", "es": "Responde STOP para cancelar, HELP para ayuda.",
               "fr": "Répondez STOP pour vous désabonner, HELP pour de l'aide.",
               "de": "Antworte STOP zum Abmelden, HELP für Hilfe."}


def with_footer(body: str, *, category: str, locale: str) -> str:
    """`body` with the STOP/HELP footer in the message's language (marketing only; never twice)."""
    if category != Category.MARKETING:
        return body
    footer = STOP_FOOTER.get((locale or "en").split("-")[0].lower(), STOP_FOOTER["en"])
    return body if footer in body else f"{body}\n{footer}"


def prepare_content(message: Any, content: Content) -> Content:
    """The text as every SMS vendor must send it. Pure: reads only the message's category and locale."""
    body = with_footer(content.body, category=message.category, locale=message.locale)
    return content if body == content.body else replace(content, body=body)

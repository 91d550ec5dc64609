"""SMS keywords (CTIA Messaging Principles; Twilio's Advanced Opt-Out uses the same lists).

The inbound-SMS webhook (issue 6: signature check, raw storage) hands every message here; a
keyword changes the number's state and returns the reply the carrier rules require. A reply is
sent back by the webhook as TwiML, so it reaches a number that is now suppressed.

The withdrawal or grant is written for every recipient of the tenant with that number (their
consent exports must show it). ``source_ref`` is the provider's id of the inbound message: a
redelivery of the same message (Twilio retries when it got no answer; an admin re-processes the
stored row) changes nothing, so a late copy of a STOP cannot undo a START sent after it.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction

from comms import errors
from comms.addresses import normalise_phone
from comms.models import Tenant
from preferences.models import ConsentAction, Suppression, SuppressionReason
from preferences.hashing import address_hash

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO", "AIDE"})
_STRIP = re.compile(r"[\s.!¡?¿'\"]+")


def keyword_of(body: str) -> str:
    """The message as a keyword: one word, case- and accent-insensitive ("Arrêt" → ARRET)."""
    import unicodedata

    text = unicodedata.normalize("NFKD", body or "")
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _STRIP.sub("", text).upper()


def sms_keyword_handle(*, tenant: Tenant, from_number: str, to_number: str, body: str,
                       source_ref: str = "") -> str | None:
    """Apply a STOP/START/HELP keyword from `from_number`; the reply text, or None (not a keyword).

    A `source_ref` already applied in `tenant` gets its reply again (the provider retried because
    it did not get the first one) and changes nothing.
    """
    from preferences.services import consent_record, consent_ref_seen, suppression_add

    word = keyword_of(body)
    if word not in STOP_WORDS | START_WORDS | HELP_WORDS:
        return None
    if word in HELP_WORDS:
        return settings.COMMS_SMS_HELP_TEXT.format(url=settings.COMMS_PUBLIC_URL)
    try:
        number = normalise_phone(from_number)
    except errors.CommsError:
        return None
    reply = settings.COMMS_SMS_STOP_TEXT if word in STOP_WORDS else settings.COMMS_SMS_START_TEXT
    with transaction.atomic():
        if consent_ref_seen(tenant=tenant, source_ref=source_ref):
            return reply
        if word in STOP_WORDS:
            suppression_add(tenant=tenant, channel="sms", address=number, reason=SuppressionReason.UNSUBSCRIBE,
                            source="sms_keyword", detail=f"{word} to {to_number}")
            consent_record(tenant=tenant, address=number, channel="sms", action=ConsentAction.WITHDRAWN,
                           source="sms_keyword", consent_text=f"Replied {word} to {to_number}",
                           source_ref=source_ref)
            return reply
        # START: lift an opt-out (never a carrier-reported invalid number or an erasure).
        Suppression.objects.filter(tenant=tenant, channel="sms", address_hash=address_hash("sms", number),
                                   reason__in=[SuppressionReason.UNSUBSCRIBE, SuppressionReason.COMPLAINT]).delete()
        consent_record(tenant=tenant, address=number, channel="sms", action=ConsentAction.GRANTED,
                       source="sms_keyword", consent_text=f"Replied {word} to {to_number}", source_ref=source_ref)
        return reply

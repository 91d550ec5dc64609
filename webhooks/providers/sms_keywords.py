"""Inbound SMS keywords for every SMS vendor: the one STOP/START/HELP service Twilio's intake uses too.

A vendor's inbound message names the number it was sent to; the tenants whose provider of that vendor
sends from that number each get the keyword (several may share a number: a STOP to it is a STOP to
each), and the default tenant when none names it (the settings-configured number serves it). The
keyword itself is ``preferences.sms_keyword_handle``: suppression + consent record, once per
``source_ref`` (the vendor's inbound message id), so a redelivered callback changes nothing.
"""

from __future__ import annotations

from comms.models import Tenant
from comms.services import tenant_get_default
from delivery import selectors as delivery_selectors
from preferences import services as preferences


def tenants_sending_from(*, provider_class: str, number: str) -> list[Tenant]:
    """Vonage writes numbers without the "+" (447700900000); a row may hold either spelling."""
    digits = number.lstrip("+")
    ids: set = set()
    for spelling in {digits, f"+{digits}"}:
        ids |= set(delivery_selectors.providers_for_number(provider_class=provider_class,
                                                           number=spelling).values_list("tenant_id", flat=True))
    return list(Tenant.objects.filter(pk__in=ids).order_by("pk")) or [tenant_get_default()]


def keyword_apply(*, provider_class: str, vendor: str, to_number: str, from_number: str, body: str,
                  inbound_id: str) -> str | None:
    """Apply a keyword texted to `to_number`; the reply text (None: not a keyword)."""
    reply = None
    for tenant in tenants_sending_from(provider_class=provider_class, number=to_number):
        reply = preferences.sms_keyword_handle(tenant=tenant, from_number=from_number, to_number=to_number,
                                               body=body, source_ref=f"{vendor}:{inbound_id}" if inbound_id else "")
    return reply

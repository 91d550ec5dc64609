"""The price of one sent message, from a per-process snapshot of the price table.

The outcome path prices every sent row, so the table is read once per ``_CACHE_SECONDS`` per process
(all rows: price tables are small — providers × countries), never once per message. The destination
country of an SMS/voice number comes from libphonenumber's metadata (``phonenumbers``); the segment
count from GSM 03.38 rules (templates_app.sms_encoding.sms_segments).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import phonenumbers

from comms.enums import Channel
from delivery.costs.models import PriceEntry
from templates_app.sms_encoding import sms_segments

_CACHE_SECONDS = 10.0
_snapshot: tuple[float, dict[tuple, PriceEntry]] = (0.0, {})

# Voice is billed per started minute; the call's length is known only from the status callback, so a
# send is priced at the minimum billable unit (one minute) when it is placed.
_VOICE_MINUTES_AT_SEND = 1


@dataclass(frozen=True)
class Cost:
    amount: Decimal
    units: int
    currency: str
    country: str
    unit: str = "message"  # PriceEntry.Unit: what `units` counts (SMS segments, voice minutes, messages)


def clear_cache() -> None:
    global _snapshot
    _snapshot = (0.0, {})


def _table() -> dict[tuple, PriceEntry]:
    global _snapshot
    now = time.monotonic()
    if _snapshot[0] > now:
        return _snapshot[1]
    table = {(str(p.tenant_id) if p.tenant_id else "", p.provider, p.channel, p.country): p
             for p in PriceEntry.objects.all()}
    _snapshot = (now + _CACHE_SECONDS, table)
    return table


def country_of(address: str) -> str:
    """ISO 3166 alpha-2 of an E.164 number ("" when it is not one)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(address, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def entry(*, tenant_id: Any, provider: str, channel: str, country: str = "") -> PriceEntry | None:
    """The most specific price: the tenant's before the global, the country's before the default."""
    table = _table()
    if not table:
        return None
    tenant = str(tenant_id) if tenant_id else ""
    for key in ((tenant, provider, channel, country), (tenant, provider, channel, ""),
                ("", provider, channel, country), ("", provider, channel, "")):
        found = table.get(key)
        if found is not None:
            return found
    return None


def units_of(channel: str, body: str, unit: str) -> int:
    if unit == PriceEntry.Unit.SEGMENT:
        return max(1, sms_segments(body or "").segments)
    if unit == PriceEntry.Unit.MINUTE:
        return _VOICE_MINUTES_AT_SEND
    return 1


def price_of(*, tenant_id: Any, provider: str, channel: str, address: str, body: str) -> Cost | None:
    """What sending this content through `provider` costs, or None when the provider has no price."""
    country = country_of(address) if channel in (Channel.SMS, Channel.VOICE) else ""
    found = entry(tenant_id=tenant_id, provider=provider, channel=channel, country=country)
    if found is None:
        return None
    units = units_of(channel, body, found.unit)
    return Cost(found.price * units, units, found.currency, country, found.unit)


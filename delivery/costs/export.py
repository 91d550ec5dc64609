"""Messages with their cost as CSV rows (the admin's message export), read in chunks: a chunk's costs
come from one indexed query on the delivery log (selectors.message_costs), never one per message."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from delivery.costs.selectors import message_costs

MESSAGE_COLUMNS = ("id", "created_at", "tenant_id", "channel", "status", "priority", "category",
                   "recipient_address", "template_key", "provider", "sent_at", "delivered_at", "failure_code")
COST_COLUMNS = ("cost", "currency", "cost_units", "cost_unit", "country", "cost_at_send", "cost_adjustment")
HEADER = [*MESSAGE_COLUMNS, *COST_COLUMNS]
CHUNK = 2000


def message_rows(queryset: Any) -> Iterator[list]:
    """One list per message (HEADER's columns); cost columns empty for a message that was not priced."""
    rows = queryset.values_list(*MESSAGE_COLUMNS).iterator(chunk_size=CHUNK)
    while chunk := list(islice(rows, CHUNK)):
        costs = message_costs([r[0] for r in chunk])
        for r in chunk:
            c = costs.get(str(r[0]))
            yield [*r, *((c["amount"], c["currency"], c["units"], c["unit"], c["country"], c["at_send"],
                          c["adjustment"] or "") if c else ("",) * len(COST_COLUMNS))]


def message_cost_label(message_id: Any) -> SafeString | str:
    """One message's cost as the admin shows it: amount, units and country, and any later adjustment."""
    c = message_costs([message_id]).get(str(message_id))
    if c is None:
        return "not priced"
    unit = c["unit"] or "unit"
    text = format_html("{} {} · {} {}{}", c["amount"], c["currency"], c["units"],
                       unit if c["units"] == 1 else f"{unit}s", f" · {c['country']}" if c["country"] else "")
    if c["adjustment"] is not None:
        text = format_html("{} (priced {} at send, adjusted by {})", text, c["at_send"], c["adjustment"])
    return text

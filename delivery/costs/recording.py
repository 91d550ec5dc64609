"""Pricing sent outcomes and keeping the daily roll-up, called from the outcome path (record_many).

Each sent row's cost goes into its DeliveryLog ``data`` ({"cost", "currency", "units", "country"}),
written by the same statement as its status, so every sent message carries its own price; the roll-up
(CostDaily) is one ``INSERT … ON CONFLICT DO UPDATE`` per flush for all the rows that were written
(grouped in Python first). With no price table at all, nothing is priced and no statement runs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection

from comms.enums import Status
from delivery.costs import attribution, prices
from delivery.costs.hourly import hourly_rollup

log = logging.getLogger(__name__)

_UPSERT = """
INSERT INTO delivery_costdaily (day, tenant_id, channel, provider, campaign, template_key, country, currency,
                                messages, units, amount)
SELECT * FROM unnest(%(day)s::date[], %(tenant)s::uuid[], %(channel)s::text[], %(provider)s::text[],
                     %(campaign)s::text[], %(template)s::text[], %(country)s::text[], %(currency)s::text[],
                     %(messages)s::bigint[], %(units)s::bigint[], %(amount)s::numeric[])
ON CONFLICT ON CONSTRAINT delivery_costdaily_unique DO UPDATE
   SET messages = delivery_costdaily.messages + EXCLUDED.messages,
       units = delivery_costdaily.units + EXCLUDED.units,
       amount = delivery_costdaily.amount + EXCLUDED.amount
"""


def price_outcomes(outcomes: list[Any]) -> None:
    """Set ``cost`` on every sent outcome whose provider has a price (a cached lookup, no query).

    The outcome matters more than its price: a database blip while the price table is (re)read leaves
    these rows unpriced (logged) and lets the outcome write ride it out (outcomes._write_outcome)."""
    try:
        _price(outcomes)
    except DatabaseError:
        log.warning("price table unreadable; %d outcomes recorded without a cost", len(outcomes), exc_info=True)
        if connection.in_atomic_block:
            raise


def _price(outcomes: list[Any]) -> None:
    for o in outcomes:
        if o.status != Status.SENT or not o.provider:
            continue
        m = o.message
        body = m.body if o.sent_body is None else o.sent_body  # bulk rows keep no body: priced on what went
        o.cost = prices.price_of(tenant_id=m.tenant_id, provider=o.provider.split("@")[0], channel=m.channel,
                                 address=m.recipient_address, body=body)


def cost_data(cost: prices.Cost | None) -> dict:
    if cost is None:
        return {}
    return {"cost": str(cost.amount), "currency": cost.currency, "cost_units": cost.units, "country": cost.country,
            "cost_unit": cost.unit}


def rollup(outcomes: list[Any]) -> None:
    """Add the written, priced outcomes to CostDaily (one statement)."""
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for o in outcomes:
        m, cost = o.message, o.cost
        key = (o.now.date(), str(m.tenant_id), m.channel, o.provider.split("@")[0],
               attribution.campaign_of(m), (m.template_key or "")[:128], cost.country,
               cost.currency)
        g = groups[key]
        g[0] += 1
        g[1] += cost.units
        g[2] += cost.amount
    if not groups:
        return
    cols = list(zip(*groups.keys()))
    vals = list(zip(*groups.values()))
    params = {name: list(col) for name, col in zip(
        ("day", "tenant", "channel", "provider", "campaign", "template", "country", "currency"), cols)}
    params.update(messages=list(vals[0]), units=list(vals[1]), amount=list(vals[2]))
    try:
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, params)
    except DatabaseError:  # the outcomes are written (each log row keeps its cost); only the roll-up misses them
        log.warning("cost roll-up of %d groups not written", len(groups), exc_info=True)
        if connection.in_atomic_block:
            raise
    hourly_rollup(outcomes)  # SMS spend per hour for the spend anomaly (one more statement, SMS flushes only)

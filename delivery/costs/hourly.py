"""SMS spend per UTC hour and tenant: the series the SMS spend anomaly judges (issue 22, seed 001).

Written by the outcome flush next to the daily roll-up (recording.rollup calls ``hourly_rollup``): one
``INSERT … ON CONFLICT DO UPDATE`` for all the flush's SMS rows, and none when the flush priced no SMS.
Read back by ``sms_spend_hour`` (admin_console.anomaly_feed turns it into the ``sms_spend:<tenant>``
series of the anomaly detector, which holds the per-hour-of-week baseline). Rows older than
``RETENTION`` are pruned by the feed: the detector keeps its own state, so only the last hours matter.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection

from comms.enums import Channel
from delivery.costs.models import CostHourly

log = logging.getLogger(__name__)
RETENTION = timedelta(days=35)

_UPSERT = """
INSERT INTO delivery_costhourly (hour, tenant_id, currency, messages, units, amount)
SELECT * FROM unnest(%(hour)s::timestamptz[], %(tenant)s::uuid[], %(currency)s::text[], %(messages)s::bigint[],
                     %(units)s::bigint[], %(amount)s::numeric[])
ON CONFLICT ON CONSTRAINT delivery_costhourly_unique DO UPDATE
   SET messages = delivery_costhourly.messages + EXCLUDED.messages,
       units = delivery_costhourly.units + EXCLUDED.units,
       amount = delivery_costhourly.amount + EXCLUDED.amount
"""


def hourly_rollup(outcomes: list[Any]) -> None:
    """Add the priced SMS outcomes (``o.message``, ``o.cost``, ``o.now``) to CostHourly, one statement."""
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for o in outcomes:
        if o.message.channel != Channel.SMS or o.cost is None:
            continue
        g = groups[(o.now.replace(minute=0, second=0, microsecond=0), str(o.message.tenant_id), o.cost.currency)]
        g[0] += 1
        g[1] += o.cost.units
        g[2] += o.cost.amount
    if not groups:
        return
    hours, tenants, currencies = (list(c) for c in zip(*groups))
    messages, units, amounts = (list(c) for c in zip(*groups.values()))
    try:
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, {"hour": hours, "tenant": tenants, "currency": currencies, "messages": messages,
                                     "units": units, "amount": amounts})
    except DatabaseError:  # as the daily roll-up: each log row keeps its cost, only the hourly sum misses it
        log.warning("hourly SMS spend of %d groups not written", len(groups), exc_info=True)
        if connection.in_atomic_block:
            raise


def sms_spend_hour(*, hour: datetime) -> list[dict]:
    """[{tenant_id, currency, amount, units, messages}] of the hour starting at ``hour``."""
    return list(CostHourly.objects.filter(hour=hour).values("tenant_id", "currency", "amount", "units", "messages"))


def cost_hourly_prune(*, now: datetime) -> int:
    return CostHourly.objects.filter(hour__lt=now - RETENTION).delete()[0]

"""A voice call's cost by its real length, settled when the provider reports the call's final status.

A call is priced at one started minute when it is placed (prices._VOICE_MINUTES_AT_SEND): its length
is known only from the status callback. Twilio bills per started minute of a connected call and
nothing for one that never connected (twilio.com/docs/voice/api/call-resource: ``busy``,
``no-answer``, ``failed`` and ``canceled`` calls carry ``CallDuration`` 0 and no price). So on the
final status:

* the final cost is the unit price recorded at send (the price for the destination, per minute) ×
  ⌈CallDuration / 60⌉ for ``completed``, and 0 for the others;
* history is not rewritten (DeliveryLog refuses UPDATE): the sent row keeps the price at send, and the
  final status's own log row carries ``cost`` (the corrected figure), ``cost_adjustment`` (the
  difference), ``cost_at_send`` and ``cost_units`` (minutes). A message's cost is its last log row
  with a ``cost`` (delivery.costs.selectors.message_costs);
* the difference goes into CostDaily under the send's own key (its day, provider, campaign, template,
  country, currency) in one set-based upsert, with ``messages`` unchanged.

Exactly once: the caller (tracking.services.events.events_apply) settles only events it inserted
(a redelivered callback meets the unique event index), and a message that already carries an
adjustment is never adjusted again.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q

from delivery.costs import attribution
from delivery.costs.recording import _UPSERT
from delivery.models import DeliveryLog, Message

CHARGED = "completed"  # the only final status a connected (billed) call ends with
FINAL = frozenset({CHARGED, "busy", "no-answer", "failed", "canceled"})


def _minutes(status: str, duration: Any) -> int:
    if status != CHARGED:
        return 0
    try:
        seconds = int(str(duration).strip() or 0)
    except ValueError:
        return 0
    return math.ceil(max(seconds, 0) / 60)


def calls_settle(*, calls: Sequence[tuple[Any, str, Any]]) -> dict[str, dict]:
    """Re-price finished calls: ``calls`` are (message id, final call status, CallDuration seconds).

    Returns {message id (str): the cost fields for the final status's log row} for the calls that
    were priced when placed and not adjusted before; writes their differences to CostDaily. Run it in
    the caller's transaction, so the roll-up moves if and only if the log row is written."""
    wanted: dict[str, tuple[str, Any]] = {}
    for message_id, status, duration in calls:
        if status in FINAL:
            wanted.setdefault(str(message_id), (status, duration))  # one final status per call
    if not wanted:
        return {}
    sent: dict[str, DeliveryLog] = {}
    adjusted: set[str] = set()
    logs = (DeliveryLog.objects.filter(message_id__in=list(wanted))
            .filter(Q(event="sent", data__has_key="cost") | Q(data__has_key="cost_adjustment"))
            .only("id", "message_id", "event", "at", "provider", "data").order_by("id"))
    for log in logs:
        if "cost_adjustment" in log.data:
            adjusted.add(str(log.message_id))
        elif log.event == "sent" and log.data.get("cost_unit", "minute") == "minute":  # per-call prices stand
            sent[str(log.message_id)] = log  # the last attempt that was sent and priced
    todo = [pk for pk in sent if pk not in adjusted]
    if not todo:
        return {}
    messages = {str(m.pk): m for m in Message.objects.filter(id__in=todo).only(
        "id", "tenant_id", "channel", "metadata", "batch_id", "template_key")}
    out: dict[str, dict] = {}
    groups: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for pk in todo:
        log, message = sent[pk], messages.get(pk)
        if message is None:
            continue
        data = log.data
        was, was_units = Decimal(str(data["cost"])), int(data.get("cost_units") or 1)
        status, duration = wanted[pk]
        minutes = _minutes(status, duration)
        final = (was / max(was_units, 1)) * minutes
        delta = final - was
        out[pk] = {"cost": str(final), "currency": data.get("currency", ""), "cost_units": minutes,
                   "cost_unit": "minute", "country": data.get("country", ""), "cost_at_send": str(was),
                   "cost_adjustment": str(delta)}
        key = (log.at.astimezone(dt_timezone.utc).date(), str(message.tenant_id), message.channel,
               log.provider.split("@")[0], attribution.campaign_of(message), (message.template_key or "")[:128],
               data.get("country", ""), data.get("currency", ""))
        groups[key][0] += minutes - was_units
        groups[key][1] += delta
    if groups:
        cols = list(zip(*groups.keys()))
        params = {name: list(col) for name, col in zip(
            ("day", "tenant", "channel", "provider", "campaign", "template", "country", "currency"), cols)}
        params.update(messages=[0] * len(groups), units=[g[0] for g in groups.values()],
                      amount=[g[1] for g in groups.values()])
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, params)
    return out

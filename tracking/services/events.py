"""Normalised events → MessageEvent + (through delivery) forward-only status and its log + metrics + consequences.

Events are applied as a set (``events_apply``: a webhook batch, or one event for our own opens and
clicks), everything they cause in the caller's transaction, keyed by the provider's event id: a
redelivered event (EC-COM-023) meets the unique index and changes nothing.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from comms.enums import Channel, LogEvent, Status
from delivery.costs import voice as voice_costs
from delivery.models import Message
from delivery.services import StatusStep, messages_advance_bulk
from tracking import useragent
from tracking.models import BounceType, EventType
from tracking.normalised import NormalisedEvent
from tracking.services import consequences, engagement_days, metrics

log = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ORPHAN = "orphan"  # no matching message, or it is not marked sent yet (EC-COM-022)
    UNKNOWN = "unknown"  # an event type we do not know (EC-COM-025)


# Where a webhook means to move a message; delivery's message_advance decides whether it may (status
# only ever moves forward, so a late 'delivered' never overwrites 'bounced').
_TARGET: dict[str, str] = {
    "delivered": Status.DELIVERED,
    "bounced:hard": Status.BOUNCED,
    "complained": Status.COMPLAINED,
    "failed": Status.FAILED,
    "rejected": Status.FAILED,
}
_LOG_EVENT = {
    EventType.DELIVERED: LogEvent.DELIVERED, EventType.BOUNCED: LogEvent.BOUNCED,
    EventType.COMPLAINED: LogEvent.COMPLAINED, EventType.OPENED: LogEvent.OPENED,
    EventType.CLICKED: LogEvent.CLICKED, EventType.UNSUBSCRIBED: LogEvent.UNSUBSCRIBED,
    EventType.FAILED: LogEvent.FAILED, EventType.REJECTED: LogEvent.FAILED, EventType.DEFERRED: LogEvent.DEFERRED,
}
# Messages in these states have not been handed to a provider (or its answer is not recorded yet).
_NOT_SENT = (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.DEFERRED)
MESSAGE_FIELDS = ("id", "tenant_id", "status", "channel", "category", "recipient_id", "recipient_address", "batch_id",
                  "template_version_id", "variant", "metadata", "provider_ref", "attempt_count", "sent_at")


def message_match(*, message_id: str = "", provider_ref: str = "") -> Message | None:
    """Our id when the provider echoed it, else the provider's own message id."""
    qs = Message.objects.only(*MESSAGE_FIELDS)
    if message_id:
        try:
            found = qs.filter(id=uuid.UUID(str(message_id))).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if provider_ref:
        # RFC 5322 Message-IDs come with or without their angle brackets depending on the ESP's API.
        bare = provider_ref.strip().strip("<>")
        return qs.filter(provider_ref__in={provider_ref, bare, f"<{bare}>"}).first()
    return None


@dataclass
class Item:
    """One event for ``events_apply``: the stored request it came in (if any) and, when the caller
    already knows it (our own open/click tracking), its message."""

    event: NormalisedEvent
    webhook_id: int | None = None
    message: Message | None = None


@dataclass
class Applied:
    outcome: Outcome
    message_id: Any = None  # the matched message of an applied event


_MATCH_COLUMNS = tuple(Message._meta.get_field(name).column for name in MESSAGE_FIELDS)


def messages_match(events: Sequence[NormalisedEvent]) -> list[Message | None]:
    """``message_match`` for many events in one query: our id when echoed, else the provider's id."""
    ids: set[uuid.UUID] = set()
    refs: set[str] = set()
    for event in events:
        if event.message_id:
            try:
                ids.add(uuid.UUID(str(event.message_id)))
            except ValueError:
                pass
        if event.provider_ref:
            bare = event.provider_ref.strip().strip("<>")
            refs |= {event.provider_ref, bare, f"<{bare}>"}
    if not ids and not refs:
        return [None] * len(events)
    # Two index scans (the primary key, the partial provider_ref index) with the ids as two array
    # parameters: an ORM ``__in`` of a thousand values costs more CPU to build than the query takes.
    found = Message.objects.raw(
        f"SELECT {', '.join(_MATCH_COLUMNS)} FROM delivery_message WHERE id = ANY(%s::uuid[]) "
        "OR (provider_ref = ANY(%s::text[]) AND provider_ref <> '') ORDER BY id",
        [[str(i) for i in ids], sorted(refs)])
    by_id: dict[str, Message] = {}
    by_ref: dict[str, Message] = {}
    for message in found:
        by_id[str(message.id)] = message
        by_ref.setdefault(message.provider_ref, message)  # ordered by id: as .first() would pick
    out: list[Message | None] = []
    for event in events:
        hit = by_id.get(str(event.message_id)) if event.message_id else None
        if hit is None and event.provider_ref:
            bare = event.provider_ref.strip().strip("<>")
            hits = [by_ref[r] for r in (event.provider_ref, bare, f"<{bare}>") if r in by_ref]
            hit = min(hits, key=lambda m: m.id) if hits else None
        out.append(hit)
    return out


_INSERT_EVENTS = """
INSERT INTO tracking_messageevent
       (tenant_id, message_id, event_type, bounce_type, provider, provider_event_id, webhook_id, recipient_address,
        timestamp, recorded_at, link_url, link_id, ip_address, user_agent, device_type, client, geo_country,
        geo_city, reason, data)
SELECT tenant_id, message_id, event_type, bounce_type, provider, provider_event_id, webhook_id, recipient_address,
       timestamp, %(now)s, link_url, link_id, ip_address, user_agent, device_type, client, '', '', reason, data
  FROM json_to_recordset(%(rows)s::json)
       AS v(tenant_id uuid, message_id uuid, event_type text, bounce_type text, provider text, provider_event_id text,
            webhook_id bigint, recipient_address text, timestamp timestamptz, link_url text, link_id text,
            ip_address inet, user_agent text, device_type text, client text, reason text, data jsonb)
ON CONFLICT (provider, provider_event_id) WHERE NOT (provider_event_id = '') DO NOTHING
RETURNING provider, provider_event_id, id
"""


def _insert_events(rows: list[tuple[NormalisedEvent, Message, int | None]], now: datetime) -> dict[tuple, int]:
    """One multi-row insert; the unique (provider, event id) index turns a redelivery into nothing.
    Returns {(provider, event id): row id} for the rows inserted (the rest were duplicates)."""
    records = []
    for event, message, webhook_id in rows:
        device, client, machine = useragent.classify(event.user_agent) if event.user_agent else ("", "", False)
        data = dict(event.data)
        if machine:
            data["machine"] = True
        records.append({
            "tenant_id": message.tenant_id, "message_id": message.id, "event_type": event.event_type,
            "bounce_type": event.bounce_type if event.event_type == EventType.BOUNCED else "",
            "provider": event.provider, "provider_event_id": event.stable_id(), "webhook_id": webhook_id,
            "recipient_address": (event.recipient or message.recipient_address)[:512],
            "timestamp": (event.timestamp or now).isoformat(), "link_url": event.url[:2048],
            "link_id": str(data.get("link_index", ""))[:64], "ip_address": useragent.truncate_ip(event.ip),
            "user_agent": event.user_agent[:512], "device_type": device, "client": client,
            "reason": event.reason[:2000], "data": data})
    with connection.cursor() as cursor:
        # One JSON parameter for the whole set (json_to_recordset): quoting one string is cheap where
        # quoting thousands of array elements client-side was most of the CPU.
        cursor.execute(_INSERT_EVENTS, {"now": now, "rows": json.dumps(records, default=str)})
        return {(provider, peid): pk for provider, peid, pk in cursor.fetchall()}


def events_apply(*, items: Sequence[Item], now: datetime | None = None) -> list[Applied]:
    """Apply many normalised events, each exactly once, in a fixed number of statements (run it inside
    the caller's transaction: everything the batch causes commits together or not at all).

    One query matches every event to its message; one multi-row insert records the events (a
    duplicate, in this batch or from an earlier one, is skipped by the unique index); delivery moves
    statuses forward with one statement per target status and logs every event in one insert, each
    message's events taken in the provider's event-time order; metrics and suppressions are written
    in bulk, and opens/clicks added to the daily engagement aggregate with one upsert. Outcomes come
    back in the order of `items`.
    """
    now = now or timezone.now()
    results: list[Applied | None] = [None] * len(items)
    known = [i for i, it in enumerate(items)
             if it.event.event_type in EventType.values and it.event.event_type != EventType.UNKNOWN]
    for i in set(range(len(items))) - set(known):
        results[i] = Applied(Outcome.UNKNOWN)
    unmatched = [i for i in known if items[i].message is None]
    messages = {i: items[i].message for i in known}
    messages.update(zip(unmatched, messages_match([items[i].event for i in unmatched])))
    fresh: dict[tuple, int] = {}  # (provider, stable id) → the first item carrying it in this batch
    for i in known:
        message = messages[i]
        if message is None or message.status in _NOT_SENT:
            results[i] = Applied(Outcome.ORPHAN)
            continue
        key = (items[i].event.provider, items[i].event.stable_id())
        if key in fresh:
            results[i] = Applied(Outcome.DUPLICATE)
        else:
            fresh[key] = i
    if not fresh:
        return [r or Applied(Outcome.UNKNOWN) for r in results]
    order = sorted(fresh)  # one insert order (one lock order) for every batch
    inserted = _insert_events([(items[fresh[k]].event, messages[fresh[k]], items[fresh[k]].webhook_id)
                               for k in order], now)
    applied: list[tuple[int, int]] = []  # (item index, event row id)
    for key, i in fresh.items():
        if key in inserted:
            results[i] = Applied(Outcome.APPLIED, messages[i].id)
            applied.append((i, inserted[key]))
        else:
            results[i] = Applied(Outcome.DUPLICATE)
    # Each message's events in the provider's order of events (ties: arrival), whatever order they came in.
    applied.sort(key=lambda p: (items[p[0]].event.timestamp or now, p[0]))
    # A finished call's real length re-prices it (delivery.costs.voice): once, as its event is new here.
    costs = voice_costs.calls_settle(calls=[
        (messages[i].id, items[i].event.data.get("call_status", ""), items[i].event.data.get("duration_seconds"))
        for i, _ in applied if messages[i].channel == Channel.VOICE and items[i].event.data.get("call_status")])
    steps, stepped = [], []
    for i, row_id in applied:
        event, message = items[i].event, messages[i]
        if event.event_type not in _LOG_EVENT:
            continue
        key = f"bounced:{event.bounce_type or BounceType.HARD}" if event.event_type == EventType.BOUNCED \
            else event.event_type
        steps.append(StatusStep(
            message_id=message.id, status=_TARGET.get(key), log_event=_LOG_EVENT[event.event_type],
            at=event.timestamp or now, attempt=message.attempt_count, provider=event.provider,
            provider_event_id=event.stable_id(), status_code=event.bounce_type or event.raw_type, detail=event.reason,
            data={"event": row_id, **({"url": event.url} if event.url else {}), **costs.get(str(message.id), {})}))
        stepped.append(message)
    for step, message, moved in zip(steps, stepped, messages_advance_bulk(steps=steps, now=now)):
        if moved:
            message.status = step.status
    firsts = [(messages[i], items[i].event.event_type,
               items[i].event.bounce_type if items[i].event.event_type == EventType.BOUNCED else "",
               items[i].event.timestamp or now) for i, _ in applied]
    won = metrics.count_events_bulk(events=firsts)
    engagement_days.rollup(events=[(messages[i], items[i].event, items[i].event.timestamp or now)
                                   for i, _ in applied], won=won, now=now)
    consequences.apply_batch(items=[(messages[i], items[i].event, items[i].event.timestamp or now)
                                    for i, _ in applied])
    return [r or Applied(Outcome.UNKNOWN) for r in results]


def event_ingest(*, event: NormalisedEvent, webhook_id: int | None = None,
                 message: Message | None = None) -> Outcome:
    """Apply one normalised event exactly once (``events_apply`` with one item, all or nothing)."""
    with transaction.atomic():
        return events_apply(items=[Item(event, webhook_id, message)])[0].outcome

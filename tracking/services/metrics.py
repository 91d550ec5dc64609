"""CampaignMetrics: counted as events arrive, recounted exactly from raw rows (EC-COM-028).

Every engagement counter counts *messages*, not events: a message opened five times is one unique
open. ``FirstEvent`` decides which event was a message's first of its kind, so the incremental
counters and a recount from MessageEvent rows always agree. ``sent`` comes from the Message rows
(the engine owns that write; counting it there would cost the send path a round trip per message).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from delivery.models import Message, MessageBatch
from tracking.models import CampaignMetrics, EventType

# event type (and bounce type) → (FirstEvent kind, counter column)
_COUNTERS = {
    EventType.DELIVERED: [("delivered", "delivered_count")],
    EventType.BOUNCED: [("bounced", "bounced_count")],
    EventType.OPENED: [("opened", "opened_count")],
    EventType.CLICKED: [("clicked", "clicked_count")],
    EventType.UNSUBSCRIBED: [("unsubscribed", "unsubscribed_count")],
    EventType.COMPLAINED: [("complained", "complained_count")],
    EventType.FAILED: [("failed", "failed_count")],
    EventType.REJECTED: [("failed", "failed_count")],
    EventType.CONVERTED: [("converted", "converted_count")],
}

_UPSERT = """
INSERT INTO tracking_campaignmetrics (tenant_id, scope, key, campaign_name, channel, {cols},
                                      started_at, last_updated)
VALUES (%(tenant)s, %(scope)s, %(key)s, '', %(channel)s, {ones}, %(now)s, %(now)s)
ON CONFLICT (tenant_id, scope, key) DO UPDATE SET {sets}, last_updated = EXCLUDED.last_updated
"""
_ALL_COLS = [f"{c}_count" for c in CampaignMetrics.COUNTERS]


@lru_cache(maxsize=1024)
def _batch_campaign(batch_id: object) -> str:
    """A bulk call's campaign id (batch metadata is immutable once written, so caching is safe)."""
    metadata = MessageBatch.objects.filter(pk=batch_id).values_list("metadata", flat=True).first() or {}
    return str(metadata.get("campaign_id") or "")


def scopes_for(message: Message) -> list[tuple[str, str]]:
    """Which metric rows a message counts towards."""
    keys: list[tuple[str, str]] = []
    campaign = (message.metadata or {}).get("campaign_id") or (
        _batch_campaign(message.batch_id) if message.batch_id else "")
    if campaign:
        keys.append((CampaignMetrics.Scope.CAMPAIGN, str(campaign)[:200]))
    if message.batch_id:
        keys.append((CampaignMetrics.Scope.BATCH, str(message.batch_id)))
    if message.template_version_id:
        keys.append((CampaignMetrics.Scope.TEMPLATE_VERSION, str(message.template_version_id)))
        if message.variant:
            keys.append((CampaignMetrics.Scope.VARIANT, f"{message.template_version_id}:{message.variant}"))
    return keys


def _first(message_id, kind: str, at: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO tracking_firstevent (message_id, event_type, at) VALUES (%s, %s, %s) "
                       "ON CONFLICT (message_id, event_type) DO NOTHING", [message_id, kind, at])
        return cursor.rowcount == 1


def count_event(*, message: Message, event_type: str, bounce_type: str, at: datetime) -> None:
    """Bump the counters this event is the first of its kind for (inside the caller's transaction)."""
    pairs = list(_COUNTERS.get(event_type, []))
    if event_type == EventType.BOUNCED and bounce_type == "hard":
        pairs.append(("hard_bounced", "hard_bounced_count"))
    columns = [column for kind, column in pairs if _first(message.id, kind, at)]
    scopes = scopes_for(message)
    if not columns or not scopes:
        return
    sql = _UPSERT.format(
        cols=", ".join(_ALL_COLS), ones=", ".join("1" if c in columns else "0" for c in _ALL_COLS),
        sets=", ".join(f"{c} = tracking_campaignmetrics.{c} + 1" for c in columns),
    )
    now = timezone.now()
    with connection.cursor() as cursor:
        for scope, key in scopes:
            cursor.execute(sql, {"tenant": message.tenant_id, "scope": scope, "key": key, "channel": message.channel,
                                 "now": now})


_BULK_UPSERT = """
INSERT INTO tracking_campaignmetrics (tenant_id, scope, key, campaign_name, channel, {cols}, started_at, last_updated)
SELECT tenant_id, scope, key, '', channel, {cols}, %(now)s, %(now)s
  FROM json_to_recordset(%(rows)s::json) AS v(tenant_id uuid, scope text, key text, channel text, {types})
ON CONFLICT (tenant_id, scope, key) DO UPDATE SET {sets}, last_updated = EXCLUDED.last_updated
"""


def count_events_bulk(*, events: list[tuple[Message, str, str, datetime]]) -> set[tuple[str, str]]:
    """``count_event`` for many (message, event_type, bounce_type, at) at once, in the given order: one
    multi-row FirstEvent insert decides which are firsts, one multi-row upsert adds them up per row.
    Returns the (message id, kind) pairs this call made first (engagement_days counts them as uniques)."""
    firsts: dict[tuple[str, str], tuple[Message, datetime]] = {}
    for message, event_type, bounce_type, at in events:
        pairs = list(_COUNTERS.get(event_type, []))
        if event_type == EventType.BOUNCED and bounce_type == "hard":
            pairs.append(("hard_bounced", "hard_bounced_count"))
        for kind, _column in pairs:
            firsts.setdefault((str(message.id), kind), (message, at))
    if not firsts:
        return set()
    keys = sorted(firsts)  # one lock order for every batch
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO tracking_firstevent (message_id, event_type, at) "
                       "SELECT * FROM json_to_recordset(%s::json) AS v(m uuid, k text, at timestamptz) "
                       "ON CONFLICT (message_id, event_type) DO NOTHING RETURNING message_id, event_type",
                       [json.dumps([{"m": k[0], "k": k[1], "at": firsts[k][1]} for k in keys], default=str)])
        won = [(str(m), kind) for m, kind in cursor.fetchall()]
    column_of = {kind: column for pairs in _COUNTERS.values() for kind, column in pairs}
    column_of["hard_bounced"] = "hard_bounced_count"
    totals: dict[tuple[str, str, str], tuple[str, dict[str, int]]] = {}
    for key in won:
        message = firsts[key][0]
        for scope, scope_key in scopes_for(message):
            row = totals.setdefault((str(message.tenant_id), scope, scope_key), (message.channel, {}))
            row[1][column_of[key[1]]] = row[1].get(column_of[key[1]], 0) + 1
    if not totals:
        return set(won)
    rows = sorted(totals)
    sql = _BULK_UPSERT.format(cols=", ".join(_ALL_COLS), types=", ".join(f"{c} int" for c in _ALL_COLS),
                              sets=", ".join(f"{c} = tracking_campaignmetrics.{c} + EXCLUDED.{c}" for c in _ALL_COLS))
    records = [{"tenant_id": r[0], "scope": r[1], "key": r[2], "channel": totals[r][0],
                **{c: totals[r][1].get(c, 0) for c in _ALL_COLS}} for r in rows]
    with connection.cursor() as cursor:
        cursor.execute(sql, {"now": timezone.now(), "rows": json.dumps(records)})
    return set(won)


def _message_filter(scope: str, key: str) -> Q:
    if scope == CampaignMetrics.Scope.CAMPAIGN:
        # The campaign's batches first (a short list from the small batch table), so the message
        # side is two index scans (batch, and the partial tag index for single sends), never a
        # scan of the whole queue table.
        batches = list(MessageBatch.objects.filter(metadata__campaign_id=key).values_list("id", flat=True))
        return Q(metadata__campaign_id=key) | Q(batch_id__in=batches)
    if scope == CampaignMetrics.Scope.BATCH:
        return Q(batch_id=key)
    if scope == CampaignMetrics.Scope.TEMPLATE_VERSION:
        return Q(template_version_id=int(key))
    version, _, variant = key.partition(":")
    return Q(template_version_id=int(version), variant=variant)


def recount(*, tenant_id, scope: str, key: str) -> dict[str, int]:
    """Exact counts from Message and MessageEvent rows (unique messages per event kind)."""
    messages = Message.objects.filter(_message_filter(scope, key), tenant_id=tenant_id)
    sent = messages.filter(sent_at__isnull=False).count()
    ids = messages.values("id")
    from tracking.models import MessageEvent

    events = MessageEvent.objects.filter(message_id__in=ids)
    agg = events.aggregate(
        delivered=Count("message_id", filter=Q(event_type=EventType.DELIVERED), distinct=True),
        bounced=Count("message_id", filter=Q(event_type=EventType.BOUNCED), distinct=True),
        hard_bounced=Count("message_id", filter=Q(event_type=EventType.BOUNCED, bounce_type="hard"), distinct=True),
        opened=Count("message_id", filter=Q(event_type=EventType.OPENED), distinct=True),
        clicked=Count("message_id", filter=Q(event_type=EventType.CLICKED), distinct=True),
        unsubscribed=Count("message_id", filter=Q(event_type=EventType.UNSUBSCRIBED), distinct=True),
        complained=Count("message_id", filter=Q(event_type=EventType.COMPLAINED), distinct=True),
        failed=Count("message_id", filter=Q(event_type__in=[EventType.FAILED, EventType.REJECTED]), distinct=True),
        converted=Count("message_id", filter=Q(event_type=EventType.CONVERTED), distinct=True),
    )
    return {"sent": sent, **agg}


@transaction.atomic
def metrics_reconcile(*, tenant_id, scope: str, key: str) -> CampaignMetrics:
    """Rewrite one metrics row from the raw rows (the batch pass that makes the counters exact)."""
    counts = recount(tenant_id=tenant_id, scope=scope, key=key)
    now = timezone.now()
    row, _ = CampaignMetrics.objects.select_for_update().get_or_create(
        tenant_id=tenant_id, scope=scope, key=key, defaults={"started_at": now})
    for name in CampaignMetrics.COUNTERS:
        setattr(row, f"{name}_count", counts[name])
    if scope == CampaignMetrics.Scope.BATCH and not row.campaign_name:
        batch = MessageBatch.objects.filter(pk=key).only("template_key", "channel", "created_at").first()
        if batch is not None:
            row.campaign_name, row.channel, row.started_at = batch.template_key, batch.channel, batch.created_at
            pending = Message.objects.filter(batch_id=key, status__in=["scheduled", "queued", "sending", "deferred"])
            if not pending.exists() and row.completed_at is None:
                row.completed_at = now
    if scope == CampaignMetrics.Scope.CAMPAIGN and not row.campaign_name:
        # A campaign's batches carry its name (comms' fan-out writes {"campaign_id", "campaign_name"}).
        named = (MessageBatch.objects.filter(tenant_id=tenant_id, metadata__campaign_id=key)
                 .values_list("metadata", flat=True).first() or {})
        row.campaign_name = str(named.get("campaign_name") or "")[:200]
    row.last_updated = row.reconciled_at = now
    row.save()
    return row


def metrics_reconcile_recent(*, since: datetime) -> int:
    """Reconcile every metrics row touched since `since`, and create rows for batches sent since then."""
    done = 0
    seen = set()
    for tenant_id, scope, key in CampaignMetrics.objects.filter(last_updated__gte=since).values_list(
            "tenant_id", "scope", "key"):
        seen.add((tenant_id, scope, key))
    for tenant_id, batch_id in MessageBatch.objects.filter(created_at__gte=since).values_list("tenant_id", "id"):
        seen.add((tenant_id, CampaignMetrics.Scope.BATCH, str(batch_id)))
    for tenant_id, scope, key in seen:
        metrics_reconcile(tenant_id=tenant_id, scope=scope, key=key)
        done += 1
    return done

"""EngagementDay: opens and clicks added up where events are recorded (one upsert per applied set).

``events_apply`` calls ``rollup`` with the opens and clicks it inserted (duplicates never reach it) and
the FirstEvent keys the same set won: events are grouped in Python and merged with one
``INSERT … ON CONFLICT DO UPDATE``, never a statement per event. Rows go in key order, so two sets
upserting the same keys lock them in the same order (a function scan returns the array in order) and
cannot deadlock. It runs in the caller's transaction: the events and their counts commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.db import connection

from tracking import useragent
from tracking.models import EventType

COUNTED = (EventType.OPENED, EventType.CLICKED, EventType.CONVERTED)  # conversions: POST /messages/{id}/conversions

_UPSERT = """
INSERT INTO tracking_engagementday AS t (day, tenant_id, provider, device, hour, weekday, event_type, total, uniques)
SELECT day, tenant_id, provider, device, hour, weekday, event_type, total, uniques
  FROM jsonb_to_recordset(%s::jsonb) AS x(day date, tenant_id uuid, provider text, device text, hour smallint,
       weekday smallint, event_type text, total bigint, uniques bigint)
ON CONFLICT ON CONSTRAINT tracking_engagementday_unique
DO UPDATE SET total = t.total + EXCLUDED.total, uniques = t.uniques + EXCLUDED.uniques
"""

# The same figures from recorded events (an upgrade's history; bench/analytics_10m.py on a seeded
# database): the first event of a message and type — by recording time, then event time — is its unique
# one, as the live path's FirstEvent insert decides. Migration 0004 runs a copy of it once.
BACKFILL_SQL = """
INSERT INTO tracking_engagementday AS t (day, tenant_id, provider, device, hour, weekday, event_type, total, uniques)
SELECT (recorded_at AT TIME ZONE 'UTC')::date, tenant_id, provider, coalesce(nullif(device_type, ''), 'unknown'),
       extract(hour FROM timestamp AT TIME ZONE 'UTC')::int, extract(isodow FROM timestamp AT TIME ZONE 'UTC')::int,
       event_type, count(*), count(*) FILTER (WHERE rank = 1)
  FROM (SELECT recorded_at, tenant_id, provider, device_type, timestamp, event_type,
               row_number() OVER (PARTITION BY message_id, event_type ORDER BY recorded_at, timestamp, id) AS rank
          FROM tracking_messageevent WHERE event_type IN ('opened', 'clicked')) e
 GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT ON CONSTRAINT tracking_engagementday_unique
DO UPDATE SET total = t.total + EXCLUDED.total, uniques = t.uniques + EXCLUDED.uniques
"""


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=dt_timezone.utc) if at.tzinfo is None else at.astimezone(dt_timezone.utc)


def rollup(*, events: Iterable[tuple[Any, Any, datetime]], won: set[tuple[str, str]], now: datetime) -> int:
    """Add inserted events — (message, NormalisedEvent, event time), in the order FirstEvent judged them —
    to EngagementDay; `won` holds the (message id, kind) pairs whose FirstEvent row this set inserted, and
    the first event carrying such a pair counts as that message's unique one. Returns the groups written."""
    day = _utc(now).date()
    groups: dict[tuple, list[int]] = {}
    credited: set[tuple[str, str]] = set()
    for message, event, at in events:
        if event.event_type not in COUNTED:
            continue
        at = _utc(at)
        device = useragent.classify(event.user_agent)[0] if event.user_agent else "unknown"
        key = (day, str(message.tenant_id), event.provider, device or "unknown", at.hour, at.isoweekday(),
               str(event.event_type))
        g = groups.setdefault(key, [0, 0])
        g[0] += 1
        first = (str(message.id), str(event.event_type))
        if first in won and first not in credited:
            credited.add(first)
            g[1] += 1
    if not groups:
        return 0
    rows = [{"day": k[0].isoformat(), "tenant_id": k[1], "provider": k[2], "device": k[3], "hour": k[4],
             "weekday": k[5], "event_type": k[6], "total": g[0], "uniques": g[1]}
            for k, g in sorted(groups.items(), key=lambda kv: (kv[0][0], *map(str, kv[0][1:])))]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [json.dumps(rows)])
    return len(rows)


def engagement_days_backfill() -> int:
    """Build the aggregate from the recorded events (into an empty table: it adds, it does not replace)."""
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL_SQL)
        return cursor.rowcount


def engagement_days_prune(*, before: date) -> int:
    """Drop the days before `before` (an index range on the unique key, whose first column is day)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracking_engagementday WHERE day < %s", [before])
        return cursor.rowcount

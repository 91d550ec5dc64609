"""Beat's safety net: expired leases back to the queue, due rows promoted, lost wake-ups re-sent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from delivery import wakeup
from delivery.services.engine import max_attempts

log = logging.getLogger(__name__)

_REAP_SQL = """
WITH r AS (
  UPDATE delivery_message AS m
     SET status = CASE WHEN m.attempt_count >= (%(budgets)s::int[])[m.priority + 1] THEN 'dead' ELSE 'queued' END,
         failed_at = CASE WHEN m.attempt_count >= (%(budgets)s::int[])[m.priority + 1] THEN %(now)s ELSE m.failed_at END,
         failure_code = CASE WHEN m.attempt_count >= (%(budgets)s::int[])[m.priority + 1]
                             THEN 'lease_expired' ELSE m.failure_code END,
         lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = %(now)s, updated_at = %(now)s
   WHERE m.id = ANY(ARRAY(
           SELECT id FROM delivery_message
            WHERE status = 'sending' AND lease_expires_at < %(now)s
            LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
  RETURNING m.id, m.attempt_count, m.status, m.lease_owner)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, 'lease_expired', %(now)s, attempt_count, '', '', '',
       CASE WHEN status = 'dead' THEN 'worker lease expired; attempts exhausted'
            ELSE 'worker lease expired; returned to queue' END, '{}'::jsonb
  FROM r
RETURNING message_id
"""

_PROMOTE_SQL = """
WITH p AS (
  UPDATE delivery_message SET status = 'queued', updated_at = %(now)s
   WHERE id = ANY(ARRAY(
           SELECT id FROM delivery_message
            WHERE status IN ('scheduled', 'deferred') AND next_attempt_at <= %(now)s
            LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
  RETURNING id, attempt_count)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, 'queued', %(now)s, attempt_count, '', '', '', 'due', '{}'::jsonb FROM p
RETURNING message_id
"""

_DUE_SQL = """
SELECT p FROM generate_series(0, 4) AS p
 WHERE EXISTS (SELECT 1 FROM delivery_message
                WHERE status = 'queued' AND priority = p AND next_attempt_at <= %(now)s)
"""


@dataclass
class HousekeepingStats:
    reaped: int = 0
    promoted: int = 0
    woken: tuple[int, ...] = ()
    health_rows: int = 0


def leases_reap(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Return rows whose worker died (lease expired) to the queue, or to the DLQ when out of attempts."""
    now = now or timezone.now()
    budgets = [max_attempts(p) for p in range(5)]
    with connection.cursor() as cursor:
        cursor.execute(_REAP_SQL, {"budgets": budgets, "now": now, "limit": limit})
        count = len(cursor.fetchall())
    if count:
        log.warning("reaped %d messages with expired leases", count)
    return count


def waiting_promote(*, now: datetime | None = None, limit: int = 50_000) -> int:
    """Scheduled and deferred rows whose time has come join the queue."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_PROMOTE_SQL, {"now": now, "limit": limit})
        return len(cursor.fetchall())


def due_priorities(*, now: datetime | None = None) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, {"now": now or timezone.now()})
        return [row[0] for row in cursor.fetchall()]


def housekeeping_run(*, now: datetime | None = None) -> HousekeepingStats:
    """One beat tick. Wake-ups it sends expire, so a stopped worker pool does not pile them up."""
    now = now or timezone.now()
    stats = HousekeepingStats(reaped=leases_reap(now=now), promoted=waiting_promote(now=now))
    due = due_priorities(now=now)
    for priority in due:
        wakeup.wake(priority, force=True, expires=60)
    stats.woken = tuple(due)
    try:  # dashboards' table; never let it stand in the way of the safety net above
        from delivery.services.channel_health import channel_health_refresh

        stats.health_rows = channel_health_refresh()
    except Exception:
        log.warning("channel health not persisted", exc_info=True)
    return stats

"""Beat's safety net: expired leases back to the queue, due rows promoted, lost wake-ups re-sent."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from delivery import wakeup
from delivery.services.engine import max_attempts

log = logging.getLogger(__name__)

# Crash accounting. A claim charges one attempt to every row it takes; a worker starts its rows in
# (priority, next_attempt_at, id) order, keeps up to COMMS_SEND_CONCURRENCY of them in flight and
# records each outcome as it comes. So when a worker dies, the first COMMS_SEND_CONCURRENCY of its
# stranded rows (per owner, in that order) are the ones it may have been sending: they keep the
# charge (a message that kills its worker every time is among them every time, reaches its budget and
# goes to the DLQ, while a bystander is charged only when it happens to be in flight) and wait
# COMMS_CRASH_BACKOFF_SECONDS, while the rows the worker never reached get their charge back and keep
# their place at the head of the queue (not behind the whole backlog).
_REAP_SQL = """
WITH s AS (
  SELECT id, row_number() OVER (PARTITION BY lease_owner ORDER BY priority, next_attempt_at, id) <= %(in_flight)s AS suspect
    FROM delivery_message
   WHERE id = ANY(ARRAY(
           SELECT id FROM delivery_message
            WHERE status = 'sending' AND lease_expires_at < %(now)s
            LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
), r AS (
  UPDATE delivery_message AS m
     SET status = CASE WHEN s.suspect AND m.attempt_count >= (%(budgets)s::int[])[m.priority + 1]
                       THEN 'dead' ELSE 'queued' END,
         failed_at = CASE WHEN s.suspect AND m.attempt_count >= (%(budgets)s::int[])[m.priority + 1]
                          THEN %(now)s ELSE m.failed_at END,
         failure_code = CASE WHEN s.suspect AND m.attempt_count >= (%(budgets)s::int[])[m.priority + 1]
                             THEN 'lease_expired' ELSE m.failure_code END,
         attempt_count = CASE WHEN s.suspect THEN m.attempt_count ELSE GREATEST(m.attempt_count - 1, 0) END,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s,
         next_attempt_at = CASE WHEN s.suspect THEN %(suspect_at)s ELSE LEAST(m.next_attempt_at, %(now)s) END
    FROM s
   WHERE m.id = s.id
  RETURNING m.id, m.attempt_count, m.status, s.suspect)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, 'lease_expired', %(now)s, attempt_count, '', '', '',
       CASE WHEN status = 'dead' THEN 'worker lease expired; attempts exhausted'
            WHEN suspect THEN 'worker lease expired while sending; returned to queue'
            ELSE 'worker lease expired before sending; returned to queue' END,
       jsonb_build_object('in_flight', suspect)
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
    suspect_at = now + timedelta(seconds=settings.COMMS_CRASH_BACKOFF_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(_REAP_SQL, {"budgets": budgets, "now": now, "limit": limit, "suspect_at": suspect_at,
                                   "in_flight": max(1, settings.COMMS_SEND_CONCURRENCY)})
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

"""Whole-batch operations for campaigns: hold (pause), release (resume), cancel, progress.

Each is one statement over the batch index, so it takes effect for every row at once when the
caller's transaction commits: a worker claims only 'queued' rows, and rows being updated are
locked, so a claim running concurrently skips them (SKIP LOCKED) rather than racing the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable

from django.db import connection

from delivery import wakeup

# 'Held' rows wait in status 'scheduled' until this far-future instant (housekeeping never promotes them).
HOLD_UNTIL = datetime(9000, 1, 1, tzinfo=dt_timezone.utc)

_HOLD_SQL = """
UPDATE delivery_message SET status = 'scheduled', next_attempt_at = %(hold)s, updated_at = %(now)s
 WHERE batch_id = ANY(%(ids)s) AND status IN ('queued', 'scheduled', 'deferred')
"""

# One batch per statement, found through its batch index. The held-row test is written so no index
# can serve it: for a next_attempt_at that statistics have not counted yet (a million rows just held),
# the waiting index would look cheap and walk every held row of every campaign.
_RELEASE_SQL = """
UPDATE delivery_message AS m
   SET status = CASE WHEN %(due_at)s <= %(now)s THEN 'queued' ELSE 'scheduled' END,
       next_attempt_at = GREATEST(%(due_at)s, %(now)s), scheduled_for = GREATEST(%(due_at)s, %(now)s),
       updated_at = %(now)s
 WHERE m.batch_id = %(batch_id)s AND m.status = 'scheduled' AND m.next_attempt_at + interval '0' = %(hold)s
RETURNING m.priority
"""

_CANCEL_SQL = """
WITH c AS (
  UPDATE delivery_message SET status = 'cancelled', updated_at = %(now)s
   WHERE batch_id = ANY(%(ids)s) AND status IN ('queued', 'scheduled', 'deferred')
  RETURNING id, attempt_count)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, 'cancelled', %(now)s, attempt_count, '', '', '', %(reason)s, '{}'::jsonb FROM c
"""

_PROGRESS_SQL = "SELECT status, count(*) FROM delivery_message WHERE batch_id = ANY(%(ids)s) GROUP BY status"


def batches_hold(*, batch_ids: Iterable[Any], now: datetime) -> int:
    """Pause: every row not yet handed to a worker waits until released."""
    with connection.cursor() as cursor:
        cursor.execute(_HOLD_SQL, {"ids": list(batch_ids), "hold": HOLD_UNTIL, "now": now})
        return cursor.rowcount


def batches_release(*, due: dict[Any, datetime], now: datetime) -> int:
    """Resume: held rows of each batch become due at the given time (now or later); workers are woken."""
    if not due:
        return 0
    priorities, released = set(), 0
    with connection.cursor() as cursor:
        for batch_id, due_at in due.items():
            cursor.execute(_RELEASE_SQL, {"batch_id": batch_id, "due_at": due_at, "now": now, "hold": HOLD_UNTIL})
            rows = cursor.fetchall()
            priorities.update(row[0] for row in rows)
            released += len(rows)
    wakeup.wake_on_commit(priorities)
    return released


def batches_cancel(*, batch_ids: Iterable[Any], now: datetime, reason: str = "") -> tuple[int, int]:
    """Cancel every row not yet handed to a worker. Returns (cancelled, in flight at this moment)."""
    ids = list(batch_ids)
    with connection.cursor() as cursor:
        cursor.execute(_CANCEL_SQL, {"ids": ids, "now": now, "reason": reason[:2000]})
        cancelled = cursor.rowcount
        cursor.execute("SELECT count(*) FROM delivery_message WHERE batch_id = ANY(%(ids)s) AND status = 'sending'",
                       {"ids": ids})
        in_flight = cursor.fetchone()[0]
    return cancelled, in_flight


@dataclass
class Progress:
    by_status: dict[str, int]

    def summary(self) -> dict[str, int]:
        s = self.by_status
        return {
            "waiting": s.get("scheduled", 0) + s.get("deferred", 0), "queued": s.get("queued", 0),
            "sending": s.get("sending", 0), "sent": s.get("sent", 0) + s.get("delivered", 0),
            "failed": s.get("failed", 0) + s.get("dead", 0) + s.get("bounced", 0) + s.get("complained", 0),
            "blocked": s.get("blocked", 0), "cancelled": s.get("cancelled", 0),
            "total": sum(s.values()),
        }

    @property
    def unfinished(self) -> int:
        s = self.by_status
        return sum(s.get(k, 0) for k in ("queued", "scheduled", "deferred", "sending"))


def batches_progress(*, batch_ids: Iterable[Any]) -> Progress:
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_SQL, {"ids": list(batch_ids)})
        return Progress(by_status=dict(cursor.fetchall()))

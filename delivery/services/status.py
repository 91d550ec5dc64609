"""A sent message's later life: status moves forward only, and every step is logged.

Provider events (delivered, bounced, complained, failed) arrive by webhook, late, twice, out of
order. Delivery is the only writer of ``delivery_message`` and ``delivery_deliverylog``, so the
rule "status only ever moves forward" lives here and nowhere else: a late 'delivered' never
overwrites 'bounced', a 'delivered' after a complaint changes nothing, yet each event still gets
its log line (with ``status_changed`` saying whether it moved the message).

The status change and its log line are one statement (a data-modifying CTE), so they cannot be
split by a crash and the hot webhook path pays one round trip, not two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from comms.enums import Status
from delivery.models import Message

# Where a provider event may move a message, and from which statuses.
FORWARD_FROM: dict[str, tuple[str, ...]] = {
    Status.DELIVERED: (Status.SENT,),
    Status.BOUNCED: (Status.SENT, Status.DELIVERED),
    Status.COMPLAINED: (Status.SENT, Status.DELIVERED),
    Status.FAILED: (Status.SENT,),
}

_ADVANCE_SQL = """
WITH u AS (
  UPDATE delivery_message
     SET status = %(status)s, updated_at = %(now)s,
         delivered_at = CASE WHEN %(status)s = 'delivered' THEN %(at)s ELSE delivered_at END,
         failed_at = CASE WHEN %(status)s IN ('failed', 'bounced') THEN %(at)s ELSE failed_at END
   WHERE id = %(id)s AND status = ANY(%(allowed)s)
  RETURNING id)
INSERT INTO delivery_deliverylog
       (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT %(id)s, %(event)s, %(now)s, %(attempt)s, %(provider)s, %(event_id)s, %(code)s, %(detail)s,
       %(data)s::jsonb || jsonb_build_object('status_changed', EXISTS (SELECT 1 FROM u))
RETURNING (SELECT count(*) FROM u)
"""

# An event that moves nothing (an open, a click): its log line alone.
_LOG_SQL = """
INSERT INTO delivery_deliverylog
       (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
VALUES (%(id)s, %(event)s, %(now)s, %(attempt)s, %(provider)s, %(event_id)s, %(code)s, %(detail)s,
        %(data)s::jsonb || jsonb_build_object('status_changed', false))
"""


def message_advance(*, message: Message, status: str | None, log_event: str, at: datetime,
                    provider: str = "", provider_event_id: str = "", status_code: str = "", detail: str = "",
                    data: Mapping[str, Any] | None = None, now: datetime | None = None) -> bool:
    """Move `message` forward to `status` (None: no status step) and write its `log_event` line.

    A status step always comes with its log line (one statement); an event that changes no
    status (opened, clicked) is logged the same way with `status=None`.

    `at` is the provider's time of the event (``delivered_at``/``failed_at``); `now` is when we
    record it (the log line's time). The log line's ``data`` gets ``status_changed``. Returns
    whether the status moved; `message.status` is updated in memory when it did. A status outside
    FORWARD_FROM is a programming error (ValueError): backwards moves have no path through here.
    Callers run it inside their own transaction when other rows must commit with it.
    """
    if status is not None and status not in FORWARD_FROM:
        raise ValueError(f"message_advance cannot move a message to {status!r}")
    now = now or timezone.now()
    params = {
        "id": message.id, "status": status, "now": now, "at": at,
        "allowed": list(FORWARD_FROM.get(status, ())),
        "event": log_event, "attempt": message.attempt_count, "provider": provider,
        "event_id": provider_event_id[:255], "code": status_code[:32], "detail": detail[:2000],
        "data": json.dumps(dict(data or {})),
    }
    with connection.cursor() as cursor:
        if status is None:
            cursor.execute(_LOG_SQL, params)
            return False
        cursor.execute(_ADVANCE_SQL, params)
        moved = cursor.fetchone()[0] == 1
    if moved:
        message.status = status
    return moved


@dataclass
class StatusStep:
    """One provider event for ``messages_advance_bulk``: where it would move its message (None: nowhere,
    the log line alone) and the log line it writes either way (the columns of ``message_advance``)."""

    message_id: Any
    status: str | None
    log_event: str
    at: datetime
    attempt: int = 0
    provider: str = ""
    provider_event_id: str = ""
    status_code: str = ""
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


# A message's path is sent → delivered → bounced|complained, or sent → failed: running the
# targets' statements in this order lets one batch take a message through two steps.
_STEP_ORDER = (Status.DELIVERED, Status.FAILED, Status.BOUNCED, Status.COMPLAINED)

_BULK_ADVANCE_SQL = """
UPDATE delivery_message m
   SET status = %(status)s, updated_at = %(now)s,
       delivered_at = CASE WHEN %(status)s = 'delivered' THEN v.at ELSE m.delivered_at END,
       failed_at = CASE WHEN %(status)s IN ('failed', 'bounced') THEN v.at ELSE m.failed_at END
  FROM json_to_recordset(%(rows)s::json) AS v(id uuid, at timestamptz)
 WHERE m.id = v.id AND m.status = ANY(%(allowed)s)
RETURNING m.id
"""

_BULK_LOG_SQL = """
INSERT INTO delivery_deliverylog
       (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT message_id, event, %(now)s, attempt, provider, event_id, code, detail, data
  FROM json_to_recordset(%(rows)s::json) AS v(message_id uuid, event text, attempt smallint, provider text,
                                               event_id text, code text, detail text, data jsonb)
"""


def messages_advance_bulk(*, steps: Sequence[StatusStep], now: datetime | None = None) -> list[bool]:
    """``message_advance`` for many events at once: one statement per target status plus one
    multi-row insert for every log line, whatever the number of events (the webhook batch path).

    `steps` are applied in the order given (callers order each message's events by the provider's
    event time), with the same forward-only rule: the messages that may move are locked first, in id
    order (so two batches cannot deadlock on them), their status is walked through the steps, and each
    target's UPDATE still re-checks ``status = ANY(allowed)``. Returns, per step, whether it moved
    its message (the log line's ``status_changed``).
    """
    for step in steps:
        if step.status is not None and step.status not in FORWARD_FROM:
            raise ValueError(f"messages_advance_bulk cannot move a message to {step.status!r}")
    now = now or timezone.now()
    moved = [False] * len(steps)
    movers = sorted({str(s.message_id) for s in steps if s.status is not None})
    if movers:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, status FROM delivery_message WHERE id = ANY(%s::uuid[]) ORDER BY id "
                           "FOR NO KEY UPDATE", [movers])
            current = {str(pk): status for pk, status in cursor.fetchall()}
            planned: dict[str, dict[str, tuple[str, datetime]]] = {}  # target → message → (step, at)
            for i, step in enumerate(steps):
                key = str(step.message_id)
                if step.status is not None and current.get(key) in FORWARD_FROM[step.status]:
                    current[key] = step.status
                    planned.setdefault(step.status, {})[key] = (i, step.at)
            for status in _STEP_ORDER:
                targets = planned.get(status)
                if not targets:
                    continue
                cursor.execute(_BULK_ADVANCE_SQL, {
                    "status": status, "now": now, "allowed": list(FORWARD_FROM[status]),
                    "rows": json.dumps([{"id": pk, "at": at} for pk, (_, at) in targets.items()], default=str)})
                for (pk,) in cursor.fetchall():
                    moved[targets[str(pk)][0]] = True
    if steps:
        with connection.cursor() as cursor:
            cursor.execute(_BULK_LOG_SQL, {"now": now, "rows": json.dumps([
                {"message_id": s.message_id, "event": s.log_event, "attempt": s.attempt, "provider": s.provider,
                 "event_id": s.provider_event_id[:255], "code": s.status_code[:32], "detail": s.detail[:2000],
                 "data": {**dict(s.data), "status_changed": m}} for s, m in zip(steps, moved)], default=str)})
    return moved

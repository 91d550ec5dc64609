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
from collections.abc import Mapping
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

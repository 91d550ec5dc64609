"""Dashboard figures, read from the aggregates the triggers of migration 0005 maintain.

Every reader is one SQL statement over the keyed aggregate table UNION ALL its pending deltas, so a
figure is exact at the statement's snapshot whether or not the rollup has run. Nothing here scans
delivery_message except the oldest-queued probe, which is an index range read (message_claim_idx).
The rollup (beat, every COMMS_STATS_ROLLUP_SECONDS) only keeps the delta tables short.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

ROLLUP_LOCK = 7_700_001  # pg advisory lock id: one rollup at a time

_ROLLUP_GAUGE = """
WITH d AS (DELETE FROM admin_console_queuegauge_delta RETURNING *)
INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, n)
SELECT tenant_id, priority, channel, status, reason, sum(n) FROM d GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (tenant_id, priority, channel, status, reason) DO UPDATE SET n = admin_console_queuegauge.n + EXCLUDED.n
"""
_ROLLUP_EVENTS = """
WITH d AS (DELETE FROM admin_console_event_delta RETURNING *),
m AS (
  INSERT INTO admin_console_eventminute (minute, tenant_id, channel, provider, event, n)
  SELECT minute, tenant_id, channel, provider, event, sum(n) FROM d GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (minute, tenant_id, channel, provider, event) DO UPDATE SET n = admin_console_eventminute.n + EXCLUDED.n
  RETURNING 1)
INSERT INTO admin_console_eventhour (hour, tenant_id, channel, provider, template_key, category, event, n)
SELECT date_trunc('hour', minute), tenant_id, channel, provider, template_key, category, event, sum(n)
  FROM d GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT (hour, tenant_id, channel, provider, template_key, category, event)
DO UPDATE SET n = admin_console_eventhour.n + EXCLUDED.n
"""


@transaction.atomic
def rollup(*, now: datetime | None = None) -> bool:
    """Fold pending deltas into the aggregates and drop expired buckets. False if another rollup runs."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(_ROLLUP_GAUGE)
        cursor.execute(_ROLLUP_EVENTS)
        cursor.execute("DELETE FROM admin_console_queuegauge WHERE n = 0")
        cursor.execute("DELETE FROM admin_console_eventminute WHERE minute < %s", [now - timedelta(hours=48)])
        cursor.execute("DELETE FROM admin_console_eventhour WHERE hour < %s",
                       [now - timedelta(days=settings.COMMS_STATS_RETENTION_DAYS)])
    return True


def rebuild() -> None:
    """Recompute the queue gauge from delivery_message (repair after manual SQL with triggers off)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE delivery_message IN SHARE MODE")
        cursor.execute("TRUNCATE admin_console_queuegauge")  # its trigger empties the gauge deltas
        cursor.execute("""
            INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, n)
            SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code), count(*)
              FROM delivery_message GROUP BY 1, 2, 3, 4, 5""")


def _tenant_clause(tenant_id: Any, alias: str = "") -> tuple[str, list]:
    if tenant_id is None:
        return "", []
    return f" AND {alias}tenant_id = %s", [str(tenant_id)]


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Now --------------------------------------------------------------------------------------------

@dataclass
class QueueRow:
    priority: int
    channel: str
    status: str
    reason: str
    n: int


def queue_depth(*, tenant_id: Any = None) -> list[QueueRow]:
    """Messages per priority, channel, status and reason, as of now."""
    where, params = _tenant_clause(tenant_id)
    sql = f"""
      SELECT priority, channel, status, reason, sum(n)::bigint FROM (
        SELECT priority, channel, status, reason, n, tenant_id FROM admin_console_queuegauge
        UNION ALL
        SELECT priority, channel, status, reason, n, tenant_id FROM admin_console_queuegauge_delta) g
       WHERE true{where}
       GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4"""
    return [QueueRow(*row) for row in _rows(sql, params)]


def oldest_queued(*, tenant_id: Any = None, now: datetime | None = None) -> dict[int, float | None]:
    """Seconds the oldest due, unclaimed message of each priority has waited (index range reads)."""
    now = now or timezone.now()
    where, params = _tenant_clause(tenant_id)
    sql = f"""
      SELECT p, (SELECT next_attempt_at FROM delivery_message
                  WHERE status = 'queued' AND priority = p AND next_attempt_at <= %s{where}
                  ORDER BY next_attempt_at LIMIT 1)
        FROM generate_series(0, 4) AS p"""
    return {p: (max(0.0, (now - at).total_seconds()) if at else None) for p, at in _rows(sql, [now, *params])}


@dataclass
class RateRow:
    channel: str
    provider: str
    event: str
    last_5m: int
    last_1h: int
    last_24h: int


def event_rates(*, tenant_id: Any = None, now: datetime | None = None) -> list[RateRow]:
    """Delivery-log events per channel and provider over the last 5 minutes, hour and day.

    Windows are whole minutes ending with the current one (the 5-minute window is the current
    minute and the four before it).
    """
    now = now or timezone.now()
    current = now.replace(second=0, microsecond=0)
    since_24h, since_1h, since_5m = (current - timedelta(minutes=m) for m in (1439, 59, 4))
    where, params = _tenant_clause(tenant_id)
    sql = f"""
      SELECT channel, provider, event,
             sum(n) FILTER (WHERE minute >= %s)::bigint, sum(n) FILTER (WHERE minute >= %s)::bigint, sum(n)::bigint
        FROM (SELECT minute, channel, provider, event, n FROM admin_console_eventminute
               WHERE minute >= %s{where}
              UNION ALL
              SELECT minute, channel, provider, event, n FROM admin_console_event_delta
               WHERE minute >= %s{where}) e
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    rows = _rows(sql, [since_5m, since_1h, since_24h, *params, since_24h, *params])
    return [RateRow(c, p, e, a or 0, b or 0, t or 0) for c, p, e, a, b, t in rows]


def sent_per_hour(*, tenant_id: Any = None, now: datetime | None = None, hours: int = 24) -> list[tuple[datetime, int]]:
    """Sent messages per hour, oldest first, for the throughput chart."""
    now = now or timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    where, params = _tenant_clause(tenant_id)
    sql = f"""
      SELECT date_trunc('hour', minute), sum(n)::bigint FROM (
        SELECT minute, n FROM admin_console_eventminute WHERE event = 'sent' AND minute >= %s{where}
        UNION ALL
        SELECT minute, n FROM admin_console_event_delta WHERE event = 'sent' AND minute >= %s{where}) e
       GROUP BY 1"""
    found = dict(_rows(sql, [start, *params, start, *params]))
    return [(start + timedelta(hours=h), int(found.get(start + timedelta(hours=h), 0))) for h in range(hours)]


# --- Quality ----------------------------------------------------------------------------------------

COUNTED = ("sent", "delivered", "failed", "dead", "bounced", "bounced_soft", "complained", "opened", "clicked",
           "unsubscribed")


@dataclass
class Quality:
    """Counts over a window and the rates derived from them (percent of sent; None when nothing sent)."""

    key: tuple
    counts: dict[str, int] = field(default_factory=dict)

    def n(self, event: str) -> int:
        return self.counts.get(event, 0)

    def pct(self, event: str, of: str = "sent") -> float | None:
        base = self.n(of)
        return round(100.0 * self.n(event) / base, 3) if base else None

    @property
    def accepted_pct(self) -> float | None:
        """Share of final attempts a provider accepted: sent / (sent + failed + dead)."""
        base = self.n("sent") + self.n("failed") + self.n("dead")
        return round(100.0 * self.n("sent") / base, 3) if base else None

    def as_dict(self) -> dict:
        return {
            "counts": {e: self.n(e) for e in COUNTED},
            "accepted_pct": self.accepted_pct,
            "delivered_pct": self.pct("delivered"),
            "hard_bounce_pct": self.pct("bounced"),
            "complaint_pct": self.pct("complained"),
            "open_pct": self.pct("opened"),
            "click_pct": self.pct("clicked"),
            "unsubscribe_pct": self.pct("unsubscribed"),
        }


GROUPINGS = {"channel": ("channel",), "provider": ("channel", "provider"), "template": ("template_key", "channel"),
             "category": ("category",), "total": ()}


def _hour_source(tenant_id: Any, since: datetime) -> tuple[str, list]:
    where, params = _tenant_clause(tenant_id)
    sql = f"""
        (SELECT hour, channel, provider, template_key, category, event, n FROM admin_console_eventhour
          WHERE hour >= %s{where}
         UNION ALL
         SELECT date_trunc('hour', minute), channel, provider, template_key, category, event, n
           FROM admin_console_event_delta WHERE minute >= %s{where}) e"""
    return sql, [since, *params, since, *params]


def quality(*, by: str, tenant_id: Any = None, now: datetime | None = None, days: int = 7) -> list[Quality]:
    """Quality counts over the last `days` (rolling, whole hours) grouped by channel/provider/template."""
    now = now or timezone.now()
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=24 * days - 1)
    columns = GROUPINGS[by]
    source, params = _hour_source(tenant_id, since)
    select = ", ".join(columns)
    sql = (f"SELECT {select + ', ' if select else ''}event, sum(n)::bigint FROM {source} "
           f"WHERE event = ANY(%s) GROUP BY {select + ', ' if select else ''}event")
    out: dict[tuple, Quality] = {}
    for row in _rows(sql, [*params, list(COUNTED)]):
        key, event, n = tuple(row[:-2]), row[-2], row[-1]
        out.setdefault(key, Quality(key)).counts[event] = int(n)
    return [out[k] for k in sorted(out)]


def daily_quality(*, tenant_id: Any = None, now: datetime | None = None, days: int = 7,
                  channel: str | None = None) -> list[tuple[datetime, Quality]]:
    """Per day (UTC) for the last `days` days, oldest first: the bounce/complaint chart."""
    now = now or timezone.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    source, params = _hour_source(tenant_id, start)
    extra = " AND channel = %s" if channel else ""
    sql = (f"SELECT date_trunc('day', hour), event, sum(n)::bigint FROM {source} WHERE event = ANY(%s){extra} "
           "GROUP BY 1, 2")
    by_day: dict[datetime, Quality] = defaultdict(lambda: Quality(()))
    for day, event, n in _rows(sql, [*params, list(COUNTED), *([channel] if channel else [])]):
        by_day[day].counts[event] = int(n)
    return [(start + timedelta(days=d), by_day.get(start + timedelta(days=d), Quality(()))) for d in range(days)]

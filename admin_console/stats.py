"""Dashboard figures, read from the aggregates the triggers of migration 0005 maintain.

Every reader is one SQL statement over the keyed aggregate table UNION ALL its pending deltas, so a
figure is exact at the statement's snapshot whether or not the rollup has run. Nothing here scans
delivery_message except the oldest-queued probe, which is an index range read (message_claim_idx).
The rollup (beat, every COMMS_STATS_ROLLUP_SECONDS) only keeps the delta tables short.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from delivery.latency.recording import outcome_days_prune
from tracking.services.engagement_days import engagement_days_prune

ROLLUP_LOCK = 7_700_001  # pg advisory lock id: one rollup at a time
MINUTE_RETENTION = timedelta(hours=26)  # the minute table serves the last-24-hours figures only

_ROLLUP_GAUGE = """
WITH d AS (DELETE FROM admin_console_queuegauge_delta RETURNING *)
INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, provider, n)
SELECT tenant_id, priority, channel, status, reason, provider, sum(n) FROM d GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (tenant_id, priority, channel, status, reason, provider)
DO UPDATE SET n = admin_console_queuegauge.n + EXCLUDED.n
"""
_ROLLUP_EVENTS = """
WITH d AS (DELETE FROM admin_console_event_delta RETURNING *),
m AS (
  INSERT INTO admin_console_eventminute (minute, tenant_id, channel, provider, event, n)
  SELECT minute, tenant_id, channel, provider, event, sum(n) FROM d WHERE minute >= %(minute_floor)s
   GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (minute, tenant_id, channel, provider, event) DO UPDATE SET n = admin_console_eventminute.n + EXCLUDED.n
  RETURNING 1)
INSERT INTO admin_console_eventday (day, tenant_id, channel, provider, template_key, category, event, n)
SELECT (minute AT TIME ZONE 'UTC')::date, tenant_id, channel, provider, template_key, category, event, sum(n)
  FROM d GROUP BY 1, 2, 3, 4, 5, 6, 7
ON CONFLICT (day, tenant_id, channel, provider, template_key, category, event)
DO UPDATE SET n = admin_console_eventday.n + EXCLUDED.n
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
        cursor.execute(_ROLLUP_EVENTS, {"minute_floor": now - MINUTE_RETENTION})
        cursor.execute("DELETE FROM admin_console_queuegauge WHERE n = 0")
        cursor.execute("DELETE FROM admin_console_eventminute WHERE minute < %s", [now - MINUTE_RETENTION])
        cursor.execute("DELETE FROM admin_console_eventday WHERE day < %s",
                       [(now - timedelta(days=settings.COMMS_STATS_RETENTION_DAYS)).date()])
    outcome_days_prune(before=(now - timedelta(days=settings.COMMS_OUTCOME_STATS_RETENTION_DAYS)).date())
    engagement_days_prune(
        before=(now - timedelta(days=settings.COMMS_ENGAGEMENT_STATS_RETENTION_DAYS)).date())
    return True


def rebuild() -> None:
    """Recompute the queue gauge from delivery_message (repair after manual SQL with triggers off)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE delivery_message IN SHARE MODE")
        cursor.execute("TRUNCATE admin_console_queuegauge")  # its trigger empties the gauge deltas
        cursor.execute("""
            INSERT INTO admin_console_queuegauge (tenant_id, priority, channel, status, reason, provider, n)
            SELECT tenant_id, priority, channel, status, comms_stats_reason(status, failure_code),
                   comms_stats_provider(status, provider), count(*)
              FROM delivery_message GROUP BY 1, 2, 3, 4, 5, 6""")


def _tenant_clause(tenant_id: Any, alias: str = "") -> tuple[str, list]:
    if tenant_id is None:
        return "", []
    return f" AND {alias}tenant_id = %s", [str(tenant_id)]


def _rows(sql: str, params: list) -> list[tuple]:
    """Every dashboard/stats read: on the replica when DATABASE_REPLICA_URL is set (settings)."""
    with connections[settings.COMMS_STATS_DATABASE].cursor() as cursor:
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


def activity(*, tenant_id: Any = None, now: datetime | None = None,
             hours: int = 24) -> tuple[list[RateRow], list[tuple[datetime, int]]]:
    """Events per channel and provider over the last 5 min / 1 h / 24 h, and sent per hour (one scan).

    Windows are whole minutes ending with the current one (the 5-minute window is the current
    minute and the four before it); the hourly series has `hours` UTC hours, the current one last.
    """
    now = now or timezone.now()
    current = now.replace(second=0, microsecond=0)
    since_24h, since_1h, since_5m = (current - timedelta(minutes=m) for m in (1439, 59, 4))
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    start = min(since_24h, first_hour)
    where, params = _tenant_clause(tenant_id)
    sql = f"""
      SELECT GROUPING(channel) = 1 AS hourly, channel, provider, event, date_trunc('hour', minute),
             sum(n) FILTER (WHERE minute >= %s)::bigint, sum(n) FILTER (WHERE minute >= %s)::bigint,
             sum(n) FILTER (WHERE minute >= %s)::bigint, sum(n) FILTER (WHERE event = 'sent')::bigint
        FROM (SELECT minute, channel, provider, event, n FROM admin_console_eventminute
               WHERE minute >= %s{where}
              UNION ALL
              SELECT minute, channel, provider, event, n FROM admin_console_event_delta
               WHERE minute >= %s{where}) e
       GROUP BY GROUPING SETS ((channel, provider, event), (date_trunc('hour', minute)))"""
    rates: list[RateRow] = []
    per_hour: dict[datetime, int] = {}
    for hourly, channel, provider, event, hour, n5, n60, n1440, sent in _rows(
            sql, [since_5m, since_1h, since_24h, start, *params, start, *params]):
        if hourly:
            per_hour[hour] = sent or 0
        elif n1440:
            rates.append(RateRow(channel, provider, event, n5 or 0, n60 or 0, n1440))
    rates.sort(key=lambda r: (r.channel, r.provider, r.event))
    series = [(first_hour + timedelta(hours=h), per_hour.get(first_hour + timedelta(hours=h), 0))
              for h in range(hours)]
    return rates, series


def event_rates(*, tenant_id: Any = None, now: datetime | None = None) -> list[RateRow]:
    return activity(tenant_id=tenant_id, now=now)[0]


def sent_per_hour(*, tenant_id: Any = None, now: datetime | None = None, hours: int = 24) -> list[tuple[datetime, int]]:
    """Sent messages per hour, oldest first, for the throughput chart."""
    return activity(tenant_id=tenant_id, now=now, hours=hours)[1]


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
_FINE = ("channel", "provider", "template_key", "category")


def _day_source(tenant_id: Any, since: date) -> tuple[str, list]:
    where, params = _tenant_clause(tenant_id)
    sql = f"""
        (SELECT day, channel, provider, template_key, category, event, n FROM admin_console_eventday
          WHERE day >= %s{where}
         UNION ALL
         SELECT (minute AT TIME ZONE 'UTC')::date, channel, provider, template_key, category, event, n
           FROM admin_console_event_delta WHERE minute >= %s{where}) e"""
    return sql, [since, *params, datetime.combine(since, time.min, tzinfo=dt_timezone.utc), *params]


def quality_all(*, tenant_id: Any = None, now: datetime | None = None, days: int = 7) -> dict[str, list[Quality]]:
    """Quality counts over the last `days` UTC days (today included), in every grouping, from one scan."""
    now = now or timezone.now()
    since = now.astimezone(dt_timezone.utc).date() - timedelta(days=days - 1)
    source, params = _day_source(tenant_id, since)
    sets = ", ".join("(" + ", ".join((*columns, "event")) + ")" for columns in GROUPINGS.values())
    flags = ", ".join(f"GROUPING({c})" for c in _FINE)
    sql = (f"SELECT {flags}, {', '.join(_FINE)}, event, sum(n)::bigint FROM {source} WHERE event = ANY(%s) "
           f"GROUP BY GROUPING SETS ({sets})")
    by_columns = {frozenset(columns): by for by, columns in GROUPINGS.items()}
    out: dict[str, dict[tuple, Quality]] = {by: {} for by in GROUPINGS}
    for row in _rows(sql, [*params, list(COUNTED)]):
        flags_, values = row[:len(_FINE)], dict(zip(_FINE, row[len(_FINE):2 * len(_FINE)]))
        event, n = row[-2], row[-1]
        by = by_columns[frozenset(c for c, flag in zip(_FINE, flags_) if not flag)]
        key = tuple(values[c] for c in GROUPINGS[by])
        out[by].setdefault(key, Quality(key)).counts[event] = int(n)
    return {by: [groups[k] for k in sorted(groups)] for by, groups in out.items()}


def quality(*, by: str, tenant_id: Any = None, now: datetime | None = None, days: int = 7) -> list[Quality]:
    """Quality counts over the last `days` UTC days grouped by channel/provider/template/category/total."""
    return quality_all(tenant_id=tenant_id, now=now, days=days)[by]


def daily_quality(*, tenant_id: Any = None, now: datetime | None = None, days: int = 7,
                  channel: str | None = None) -> list[tuple[date, Quality]]:
    """Per UTC day for the last `days` days, oldest first: the bounce/complaint chart."""
    now = now or timezone.now()
    start = now.astimezone(dt_timezone.utc).date() - timedelta(days=days - 1)
    source, params = _day_source(tenant_id, start)
    extra = " AND channel = %s" if channel else ""
    sql = f"SELECT day, event, sum(n)::bigint FROM {source} WHERE event = ANY(%s){extra} GROUP BY 1, 2"
    by_day: dict[date, Quality] = {}
    for day, event, n in _rows(sql, [*params, list(COUNTED), *([channel] if channel else [])]):
        by_day.setdefault(day, Quality(())).counts[event] = int(n)
    return [(start + timedelta(days=d), by_day.get(start + timedelta(days=d), Quality(()))) for d in range(days)]

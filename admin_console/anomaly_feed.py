"""The hourly points the anomaly detector judges, read from the aggregates (no scan of delivery_message).

* send_rate:<channel> and failure_rate:<provider>: the minute aggregate (eventminute + its pending
  deltas) summed over the hour;
* failure_code:<provider>:<code>: growth of the queue gauge's failed/dead rows per provider and failure
  code (the gauge keys failed/dead rows by provider since admin_console migration 0016);
* bounce_rate / complaint_rate per campaign and template version: growth of CampaignMetrics' counters;
* queue_age:p<N>: seconds the oldest due row of each priority has waited (index range reads);
* sms_spend:<tenant>:<currency>: the tenant's SMS spend in the hour (delivery.costs.hourly), with a
  zero point for a known series that spent nothing (the detector must learn quiet hours too).
The beat task (admin_console.tasks.anomaly_tick) calls ``anomaly_tick`` every few minutes; each series
is judged once per finished hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from admin_console import stats
from delivery.costs.hourly import cost_hourly_prune, sms_spend_hour
from tracking.models import AnomalySeries, CampaignMetrics
from tracking.services.anomaly import Point, anomaly_observe

_HOUR_EVENTS = """
  SELECT channel, provider, event, sum(n)::bigint FROM (
    SELECT channel, provider, event, n FROM admin_console_eventminute WHERE minute >= %(a)s AND minute < %(b)s
    UNION ALL
    SELECT channel, provider, event, n FROM admin_console_event_delta WHERE minute >= %(a)s AND minute < %(b)s) e
   WHERE event IN ('sent', 'failed', 'dead') GROUP BY 1, 2, 3"""
_FAILED_CODES = """
  SELECT coalesce(nullif(provider, ''), channel), reason, sum(n)::bigint FROM (
    SELECT channel, provider, reason, n, status FROM admin_console_queuegauge
    UNION ALL
    SELECT channel, provider, reason, n, status FROM admin_console_queuegauge_delta) g
   WHERE status IN ('failed', 'dead') AND reason <> '' GROUP BY 1, 2"""


def hour_points(*, hour: datetime, now: datetime) -> list[Point]:
    """Every watched series' point for the hour starting at ``hour``."""
    points: list[Point] = []
    sent: dict[str, float] = {}
    attempts: dict[str, float] = {}
    failed: dict[str, float] = {}
    for channel, provider, event, n in stats._rows(_HOUR_EVENTS, {"a": hour, "b": hour + timedelta(hours=1)}):
        if event == "sent":
            sent[channel] = sent.get(channel, 0) + n
        if provider:
            attempts[provider] = attempts.get(provider, 0) + n
            if event != "sent":
                failed[provider] = failed.get(provider, 0) + n
    points += [Point(f"send_rate:{c}", "send_rate", float(n), float(n)) for c, n in sent.items()]
    points += [Point(f"failure_rate:{p}", "failure_rate", failed.get(p, 0) / n, float(n))
               for p, n in attempts.items() if n]
    for provider, code, n in stats._rows(_FAILED_CODES, []):
        # A row failed before any provider was tried (no route) keys by its channel, as before.
        points.append(Point(f"failure_code:{provider}:{code}", "failure_code", float(n), float(n), cumulative=True,
                            labels={"provider": provider, "code": code}))
    scopes = {CampaignMetrics.Scope.CAMPAIGN: "campaign", CampaignMetrics.Scope.TEMPLATE_VERSION: "template"}
    recent = now - timedelta(days=2)
    for m in CampaignMetrics.objects.filter(scope__in=list(scopes), last_updated__gte=recent).only(
            "tenant_id", "scope", "key", "sent_count", "hard_bounced_count", "complained_count"):
        name = f"{scopes[m.scope]}:{m.key}"
        # a campaign or template is one tenant's: its alerts are shown to that tenant's keys only
        owner = {"tenant_id": str(m.tenant_id), "labels": {scopes[m.scope]: m.key}}
        points.append(Point(f"bounce_rate:{name}", "bounce_rate", float(m.hard_bounced_count), float(m.sent_count),
                            cumulative=True, **owner))
        points.append(Point(f"complaint_rate:{name}", "complaint_rate", float(m.complained_count),
                            float(m.sent_count), cumulative=True, **owner))
    for priority, age in stats.oldest_queued(now=now).items():
        points.append(Point(f"queue_age:p{priority}", "queue_age", float(age or 0.0), float(age or 0.0)))
    return points + sms_spend_points(hour=hour)


def sms_spend_points(*, hour: datetime) -> list[Point]:
    """Each tenant's SMS spend in the hour (value: amount, volume: segments), zero for known series."""
    points: dict[str, Point] = {}
    for key in AnomalySeries.objects.filter(kind="sms_spend").values_list("key", flat=True):
        _, tenant_id, currency = (key.split(":") + ["", ""])[:3]
        points[key] = Point(key, "sms_spend", 0.0, 0.0, labels={"tenant": tenant_id, "currency": currency},
                            tenant_id=tenant_id or None)
    for row in sms_spend_hour(hour=hour):
        key = f"sms_spend:{row['tenant_id']}:{row['currency']}"
        tenant_id = str(row["tenant_id"])
        points[key] = Point(key, "sms_spend", float(row["amount"]), float(row["units"]), tenant_id=tenant_id,
                            labels={"tenant": tenant_id, "currency": row["currency"]})
    return list(points.values())


def anomaly_tick(*, now: datetime | None = None) -> int:
    """Judge the last finished hour; returns how many alerts it opened."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    opened = anomaly_observe(hour=hour, points=hour_points(hour=hour, now=now))
    if now.minute < 10:  # the first ticks of each hour keep the hourly spend table short
        cost_hourly_prune(now=now)
    return len(opened)

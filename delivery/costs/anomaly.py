"""SMS spend anomaly (seed 001): today's SMS spend per tenant against its trailing baseline.

The roll-up is daily, so the baseline is the median of the tenant's SMS spend on each of the previous
``days`` UTC days (days without spend count as 0); today's spend *so far* is compared with
``factor`` × that median (a partial day only under-states today, so the check errs towards silence).
A floor keeps a tenant whose baseline is ~0 from alerting on its first few messages. Each tenant
alerts at most once per UTC day (a Redis SET NX marker; fails open to "alert" when Redis is down,
since a duplicate alert is cheaper than a missed one). Run by beat (COMMS_SMS_ANOMALY_SECONDS).
"""

from __future__ import annotations

import logging
import statistics
from datetime import datetime, timedelta
from decimal import Decimal

import redis
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from django.utils.module_loading import import_string

from comms.enums import Channel
from comms.redis import redis_client
from delivery.costs.models import CostDaily

log = logging.getLogger(__name__)


def _first_alert_today(tenant_id: str, day: str) -> bool:
    try:
        return bool(redis_client().set(f"comms:cost:sms-anomaly:{tenant_id}:{day}", 1, nx=True, ex=2 * 86400))
    except redis.RedisError:
        log.warning("redis unreachable: the SMS spend anomaly alert cannot be de-duplicated")
        return True


def sms_spend_check(*, now: datetime | None = None, days: int = 7, factor: float = 3.0,
                    floor: Decimal = Decimal("1")) -> list[dict]:
    """The tenants whose SMS spend today is over `factor` × their trailing median (and `floor`), alerted."""
    now = now or timezone.now()
    today = now.date()
    first = today - timedelta(days=days)
    per_day: dict[str, dict] = {}
    rows = (CostDaily.objects.filter(channel=Channel.SMS, day__gte=first, day__lte=today)
            .values("tenant_id", "day", "currency").annotate(amount=Sum("amount")))
    for r in rows:
        per_day.setdefault((str(r["tenant_id"]), r["currency"]), {})[r["day"]] = r["amount"]
    found = []
    for (tenant_id, currency), by_day in per_day.items():
        spent = by_day.get(today, Decimal(0))
        history = [by_day.get(first + timedelta(days=i), Decimal(0)) for i in range(days)]
        median = Decimal(statistics.median(history))
        threshold = max(median * Decimal(str(factor)), floor)
        if spent <= threshold:
            continue
        evidence = {"tenant": tenant_id, "currency": currency, "today": str(spent), "median": str(median),
                    "threshold": str(threshold), "factor": factor,
                    "history": {(first + timedelta(days=i)).isoformat(): str(v) for i, v in enumerate(history)}}
        found.append(evidence)
        if _first_alert_today(tenant_id, today.isoformat()) and settings.COMMS_OPS_ALERT:
            import_string(settings.COMMS_OPS_ALERT)(
                kind="cost.sms_spend_anomaly", data=evidence,
                text=f"tenant {tenant_id} SMS spend today {spent} {currency} is over {factor:g}× its {days}-day "
                     f"median {median}")
    return found

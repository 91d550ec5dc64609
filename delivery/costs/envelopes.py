"""Monthly cost envelopes at send time, hosted by delivery.services.quota_gate (one gate, not two).

For each (tenant, channel) of a claimed batch that has an envelope with a budget, this month's spend
(CostDaily, one indexed range per tenant) is compared with the budget:

* at ``alert_pct`` (80 % by default) an ops alert goes out through COMMS_OPS_ALERT, once per month
  (a conditional UPDATE of ``alerted_month`` decides who sends it when many workers see it together);
* at 100 % the non-critical rows are deferred to the first second of next UTC month without spending an
  attempt (status 'deferred', code COMMS_BUDGET_EXHAUSTED); security and legal rows
  (templates_app.models.CRITICAL_CATEGORIES) and P0 (emergency) rows of any category always pass. Raising the budget (envelope_set) puts the
  held rows back in the queue at once.

The spend is read per claimed batch, so the budget can be overshot by what one batch sends after the
check (≤ the priority's batch size × the price): an envelope is a budget, not a hard stop.
Envelopes are cached per process for ``_CACHE_SECONDS``; with none configured the gate costs nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, datetime, timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils.module_loading import import_string

from comms.enums import Priority
from delivery.costs import prices
from delivery.costs.errors import BUDGET_EXHAUSTED
from delivery.costs.models import CostDaily, CostEnvelope
from preferences.decision import DEFER, Decision
from templates_app.models import CRITICAL_CATEGORIES

_CACHE_SECONDS = 10.0
_cache: tuple[float, dict[tuple[str, str], CostEnvelope]] = (0.0, {})


def clear_cache() -> None:
    global _cache
    _cache = (0.0, {})


def envelopes() -> dict[tuple[str, str], CostEnvelope]:
    global _cache
    now = time.monotonic()
    if _cache[0] > now:
        return _cache[1]
    table = {(str(e.tenant_id), e.channel): e for e in CostEnvelope.objects.all()}
    _cache = (now + _CACHE_SECONDS, table)
    return table


def month_start(now: datetime) -> date:
    return now.astimezone(dt_timezone.utc).date().replace(day=1)


def next_month(now: datetime) -> datetime:
    first = month_start(now)
    year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
    return datetime(year, month, 1, tzinfo=dt_timezone.utc)


def spent(*, tenant_id: Any, channel: str, now: datetime) -> Decimal:
    """This UTC month's recorded spend of a tenant on a channel (the envelope's currency is assumed)."""
    total = CostDaily.objects.filter(tenant_id=tenant_id, channel=channel, day__gte=month_start(now)).aggregate(
        s=Sum("amount"))["s"]
    return total or Decimal(0)


def _alert(envelope: CostEnvelope, *, level: str, used: Decimal, now: datetime) -> None:
    """Once per month and level: the conditional UPDATE lets exactly one worker send it."""
    month = now.strftime("%Y-%m")
    field = "alerted_month" if level == "warning" else "exhausted_month"
    won = CostEnvelope.objects.filter(pk=envelope.pk).exclude(**{field: month}).update(**{field: month})
    if not won or not settings.COMMS_OPS_ALERT:
        return
    pct = float(used / envelope.monthly_budget * 100) if envelope.monthly_budget else 100.0
    text = (f"tenant {envelope.tenant_id} {envelope.channel} spend {used} {envelope.currency} is {pct:.0f} % "
            f"of its monthly envelope {envelope.monthly_budget}"
            + ("; non-critical sends are held until next month" if level == "exhausted" else ""))
    import_string(settings.COMMS_OPS_ALERT)(
        kind=f"cost.envelope_{level}", text=text,
        data={"tenant": str(envelope.tenant_id), "channel": envelope.channel, "spent": str(used),
              "budget": str(envelope.monthly_budget), "currency": envelope.currency, "percent": round(pct, 1),
              "month": month})


def gate(messages: list, *, now: datetime) -> dict:
    """{message id: Decision(DEFER)} for non-critical rows whose tenant's channel envelope is spent."""
    table = envelopes()
    if not table:
        return {}
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for m in messages:
        if (str(m.tenant_id), m.channel) in table:
            groups[(str(m.tenant_id), m.channel)].append(m)
    held: dict = {}
    for key, rows in groups.items():
        envelope = table[key]
        if envelope.monthly_budget is None:
            continue
        used = spent(tenant_id=envelope.tenant_id, channel=envelope.channel, now=now)
        if used >= envelope.monthly_budget * envelope.alert_pct / 100:
            _alert(envelope, level="warning", used=used, now=now)
        if used < envelope.monthly_budget:
            continue
        _alert(envelope, level="exhausted", used=used, now=now)
        until = next_month(now)
        for m in rows:
            if m.category not in CRITICAL_CATEGORIES and m.priority != Priority.P0:
                held[m.id] = Decision(DEFER, code=BUDGET_EXHAUSTED, until=until,
                                      reason=f"monthly {m.channel} cost envelope spent ({used} of "
                                             f"{envelope.monthly_budget} {envelope.currency})")
    return held


def failover_too_dear(message: Any, provider: str) -> bool:
    """True when a *failover* provider's unit price for this destination is above the tenant's cap for
    the channel (seed 001: the Twilio fallback is "gated by cost"). Unpriced providers are not skipped."""
    envelope = envelopes().get((str(message.tenant_id), message.channel))
    if envelope is None or envelope.failover_price_cap is None:
        return False
    country = prices.country_of(message.recipient_address) if message.channel in ("sms", "voice") else ""
    found = prices.entry(tenant_id=message.tenant_id, provider=provider.split("@")[0], channel=message.channel,
                         country=country)
    return found is not None and found.price > envelope.failover_price_cap

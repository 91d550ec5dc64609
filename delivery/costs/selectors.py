"""Reading the cost roll-up: a tenant's spend over a period, grouped by the dimensions asked for."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Sum

from delivery.costs.errors import PeriodInvalid, UnknownDimension
from delivery.costs.models import CostDaily

DIMENSIONS = {"day": "day", "channel": "channel", "provider": "provider", "campaign": "campaign",
              "template": "template_key", "country": "country"}
MAX_DAYS = 366


def parse_period(start: str | None, end: str | None, *, today: date) -> tuple[date, date]:
    """[from, to] inclusive, ISO dates; default this month so far. Reversed or > 366 days → typed error."""
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise PeriodInvalid("from and to are ISO dates (YYYY-MM-DD).", details={"from": start, "to": end}) from None
    if last < first:
        raise PeriodInvalid("to is before from.", details={"from": str(first), "to": str(last)})
    if (last - first) > timedelta(days=MAX_DAYS):
        raise PeriodInvalid(f"The period is longer than {MAX_DAYS} days.", details={"max_days": MAX_DAYS})
    return first, last


def parse_group_by(value: str | None) -> list[str]:
    names = [v.strip() for v in (value or "channel").split(",") if v.strip()]
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise UnknownDimension(details={"unknown": unknown, "allowed": sorted(DIMENSIONS)})
    return list(dict.fromkeys(names))


def cost_rollup(*, tenant_id: Any, first: date, last: date, group_by: list[str]) -> list[dict]:
    """One row per group and currency: messages, units, amount (an index range on (tenant_id, day))."""
    fields = [DIMENSIONS[g] for g in group_by] + ["currency"]
    rows = (CostDaily.objects.filter(tenant_id=tenant_id, day__gte=first, day__lte=last)
            .values(*fields).annotate(messages=Sum("messages"), units=Sum("units"), amount=Sum("amount"))
            .order_by(*fields))
    out = []
    for r in rows:
        item = {g: (r[DIMENSIONS[g]].isoformat() if g == "day" else r[DIMENSIONS[g]]) for g in group_by}
        item.update(currency=r["currency"], messages=r["messages"], units=r["units"], amount=str(r["amount"]))
        out.append(item)
    return out


def month_summary(*, tenant_ids: list | None, today: date) -> list[dict]:
    """This month's spend per tenant, channel and provider (the console's Costs block)."""
    rows = CostDaily.objects.filter(day__gte=today.replace(day=1))
    if tenant_ids is not None:
        rows = rows.filter(tenant_id__in=tenant_ids)
    return list(rows.values("tenant_id", "channel", "provider", "currency")
                .annotate(messages=Sum("messages"), amount=Sum("amount")).order_by("tenant_id", "channel", "provider"))

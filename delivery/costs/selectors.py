"""Reading the cost roll-up: a tenant's spend over a period, grouped by the dimensions asked for."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from django.db.models import Sum

from delivery.costs.errors import PeriodInvalid, UnknownDimension
from delivery.costs.models import CostDaily
from delivery.models import DeliveryLog

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


def cost_of(log_data: Iterable[dict]) -> dict | None:
    """A message's cost from its log rows' data, oldest first: the last row with a ``cost`` is what it
    costs now (the sent row's price, or a later correction such as a finished call's real length,
    delivery.costs.voice); the first is what it was priced at when sent. None when never priced."""
    first = last = None
    for data in log_data:
        if isinstance(data, dict) and "cost" in data:
            first, last = first or data, data
    if last is None:
        return None
    return {"amount": str(last["cost"]), "currency": last.get("currency", ""), "units": last.get("cost_units"),
            "unit": last.get("cost_unit", ""), "country": last.get("country", ""),
            "at_send": str(last.get("cost_at_send", first["cost"])),
            "adjustment": str(last["cost_adjustment"]) if "cost_adjustment" in last else None}


def message_costs(message_ids: list) -> dict[str, dict]:
    """{message id: cost_of(...)} for a page of messages, in one indexed query (deliverylog_message_idx)."""
    if not message_ids:
        return {}
    datas: dict[str, list[dict]] = defaultdict(list)
    rows = (DeliveryLog.objects.filter(message_id__in=list(message_ids), data__has_key="cost")
            .order_by("message_id", "id").values_list("message_id", "data"))
    for message_id, data in rows:
        datas[str(message_id)].append(data)
    return {pk: cost for pk, items in datas.items() if (cost := cost_of(items)) is not None}

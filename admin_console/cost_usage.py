"""The dashboard's Costs section: this month's spend per tenant, channel and provider against the envelope."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from delivery.costs import envelopes, selectors


def cost_rows(tenants: list[tuple], *, tenant_id: str | None, now: datetime) -> list[dict]:
    """One row per tenant/channel/provider with spend this UTC month (CostDaily, one grouped query), each
    with its channel's envelope: budget, % used of the channel's total, alert at the envelope's threshold."""
    slugs = {str(t): slug for t, slug in tenants}
    rows = selectors.month_summary(tenant_ids=[tenant_id] if tenant_id else None, today=now.date())
    totals: dict[tuple[str, str], Decimal] = {}
    for r in rows:
        key = (str(r["tenant_id"]), r["channel"])
        totals[key] = totals.get(key, Decimal(0)) + r["amount"]
    table = envelopes.envelopes()
    out = []
    for r in rows:
        key = (str(r["tenant_id"]), r["channel"])
        envelope = table.get(key)
        budget = envelope.monthly_budget if envelope else None
        pct = round(float(totals[key] / budget * 100), 1) if budget else None
        out.append({"tenant": slugs.get(key[0], key[0]), "channel": r["channel"], "provider": r["provider"],
                    "messages": r["messages"], "amount": f"{r['amount']:.2f}", "currency": r["currency"],
                    "channel_total": f"{totals[key]:.2f}", "budget": f"{budget:.2f}" if budget else None,
                    "pct": pct, "alert": pct is not None and pct >= (envelope.alert_pct if envelope else 80)})
    return out

"""The dashboard's per-tenant quota section: today's use of each daily budget, and refusals/deferrals."""

from __future__ import annotations

from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from comms import quotas
from comms.models import Tenant


def quota_rows(tenants: list[tuple], *, tenant_id: str | None, now: datetime) -> list[dict]:
    """One row per tenant and channel with a daily budget, plus one per tenant that only has other
    limits (API rate, bulk size) or recorded refusals; the console's tenant filter applies."""
    slugs = {str(t): slug for t, slug in tenants if tenant_id is None or str(t) == tenant_id}
    events = quotas.events()
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for (tid, kind, channel), n in events.items():
        counts.setdefault((tid, channel), {})[kind] = n
    rows = []
    for tid, slug in slugs.items():
        limits = quotas.limits(tid)
        usage = quotas.usage([tid], now=now)
        other = {k: n for (t, ch), kinds in counts.items() if t == tid and ch == "" for k, n in kinds.items()}
        for u in usage:
            c = counts.get((tid, u["channel"]), {})
            rows.append({"tenant": slug, "plan": limits.plan, "channel": u["channel"], "limit": u["limit"],
                         "accepted": u["accepted"], "sent": u["sent"], "pct": u["pct"], "alert": u["pct"] >= 90,
                         "deferred": c.get("deferred_daily", 0), "refused": c.get("refused_daily", 0),
                         "api_rate": limits.api_requests_per_minute, "max_bulk": limits.max_bulk_size,
                         "weight": limits.weight, "refused_other": sum(other.values())})
        if not usage and (limits.api_requests_per_minute or limits.max_bulk_size or other or limits.weight != 1):
            rows.append({"tenant": slug, "plan": limits.plan, "channel": "", "limit": None, "accepted": None,
                         "sent": None, "pct": None, "alert": False, "deferred": 0, "refused": 0,
                         "api_rate": limits.api_requests_per_minute, "max_bulk": limits.max_bulk_size,
                         "weight": limits.weight, "refused_other": sum(other.values())})
    return rows


def metric_families(*, now: datetime) -> list:
    """Prometheus: each daily budget, its use today, and refusals/deferrals (counters since Redis started)."""
    slugs = {str(t): slug for t, slug in Tenant.objects.values_list("id", "slug")}
    limit = GaugeMetricFamily("comms_tenant_quota_limit", "A tenant's daily message budget per channel.",
                              labels=["tenant", "channel"])
    used = GaugeMetricFamily("comms_tenant_quota_used", "Messages counted against today's budget (accepted at the "
                             "API, sent by the workers).", labels=["tenant", "channel", "kind"])
    for row in quotas.usage(list(slugs), now=now):
        tenant = slugs[str(row["tenant_id"])]
        limit.add_metric([tenant, row["channel"]], row["limit"])
        used.add_metric([tenant, row["channel"], "accepted"], row["accepted"])
        used.add_metric([tenant, row["channel"], "sent"], row["sent"])
    events = CounterMetricFamily("comms_tenant_quota_events", "Requests refused and messages deferred by tenant "
                                 "quotas (refused_daily, refused_api_rate, refused_bulk_size, deferred_daily).",
                                 labels=["tenant", "kind", "channel"])
    for (tid, kind, channel), n in sorted(quotas.events().items()):
        events.add_metric([slugs.get(tid, tid), kind, channel], n)
    return [limit, used, events]

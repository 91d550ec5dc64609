"""The ops dashboard at /console/: server-rendered, SVG charts, refreshes itself; every figure links."""

from __future__ import annotations

import time
from datetime import datetime

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from admin_console import charts, cost_usage, dashboard, quota_usage
from admin_console.dashboard import messages_url, since_param
from comms.enums import Status
from comms.models import Tenant

PCT_COLUMNS = [("accepted_pct", "accepted", None), ("delivered_pct", "delivered", "delivered"),
               ("hard_bounce_pct", "hard bounce", "bounced"), ("complaint_pct", "complaint", "complained"),
               ("open_pct", "open", None), ("click_pct", "click", None), ("unsubscribe_pct", "unsubscribe", None)]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _quality_rows(rows: list[dict], keys: tuple[str, ...], tenant_id, since: str) -> list[dict]:
    thresholds = dashboard.thresholds()
    out = []
    for row in rows:
        filters = {f"{'template_key' if k == 'template_key' else k}__exact": row[k] for k in keys}
        cells = []
        for field, _label, status in PCT_COLUMNS:
            value = row[field]
            cells.append({"text": "—" if value is None else f"{value:.2f}%",
                          "href": messages_url(tenant_id, status__exact=status, created_at__gte=since, **filters)
                          if status else "",
                          "alert": value is not None and field in thresholds and value > thresholds[field]})
        out.append({"label": " · ".join(str(row[k]) or "(inline)" for k in keys), "sent": row["counts"]["sent"],
                    "sent_href": messages_url(tenant_id, created_at__gte=since, **filters), "cells": cells})
    return out


def _context(snap: dict, tenant_id, now: datetime) -> dict:
    q = snap["queue"]
    since_7d = since_param(now, "7d")
    queue_rows = []
    for p in q["priorities"]:
        queue_rows.append({
            "label": p["label"], "age": _age(p["oldest_queued_seconds"]),
            "age_alert": (p["oldest_queued_seconds"] or 0) > 60,
            "age_href": messages_url(tenant_id, priority__exact=p["priority"], status__exact="queued"),
            "cells": [{"n": p["by_status"][s], "href": messages_url(tenant_id, priority__exact=p["priority"],
                                                                   status__exact=s)} for s in dashboard.STATUS_COLUMNS],
        })
    totals = [{"n": sum(p["by_status"][s] for p in q["priorities"]), "href": messages_url(tenant_id, status__exact=s)}
              for s in dashboard.STATUS_COLUMNS]
    reasons = [{"status": status, "reason": reason, "n": n,
                "href": messages_url(tenant_id, status__exact=status, failure_code__exact=reason)}
               for status, items in q["reasons"].items() for reason, n in items.items()]
    rate_rows = []
    for r in snap["rates"]:
        base = {"channel__exact": r["channel"], "provider__exact": r["provider"]}
        rate_rows.append({**r, "links": {
            w: {"sent": messages_url(tenant_id, sent_at__gte=since_param(now, w), **base),
                "failed": messages_url(tenant_id, status__in="failed,dead", failed_at__gte=since_param(now, w), **base)}
            for w in ("5m", "1h", "24h")}})
    hours = snap["sent_per_hour"]
    throughput = charts.bar_chart(
        title="Sent per hour, last 24 h (UTC)",
        bars=[(datetime.fromisoformat(at).strftime("%H:00"), n,
               messages_url(tenant_id, sent_at__gte=datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S")))
              for at, n in hours])
    rolling = snap["quality"]["rolling"]
    thresholds = snap["quality"]["thresholds"]
    quality_chart = charts.line_chart(
        title="Hard bounces and complaints, % of sent, 7-day rolling",
        x_labels=[r["day"][5:] for r in rolling], unit="%",
        series=[charts.Series("hard bounce %", [r["hard_bounce_pct"] for r in rolling], charts.PALETTE[1]),
                charts.Series("complaint %", [r["complaint_pct"] for r in rolling], charts.PALETTE[3])],
        thresholds=[(thresholds["hard_bounce_pct"], f"hard bounce limit {thresholds['hard_bounce_pct']}%"),
                    (thresholds["complaint_pct"], f"complaint limit {thresholds['complaint_pct']}%")])
    p0 = q["priorities"][0]
    return {
        "snap": snap, "queue_rows": queue_rows, "queue_totals": totals, "status_columns": dashboard.STATUS_COLUMNS,
        "reasons": reasons, "rate_rows": rate_rows, "throughput_chart": throughput, "quality_chart": quality_chart,
        "p0_age": _age(p0["oldest_queued_seconds"]), "p0_alert": (p0["oldest_queued_seconds"] or 0) > 60,
        "p0_queued": p0["by_status"][Status.QUEUED], "p0_href": messages_url(tenant_id, priority__exact=0,
                                                                              status__exact="queued"),
        "deferred_quiet": q["deferred_quiet_hours"],
        "deferred_href": messages_url(tenant_id, status__exact="deferred"),
        "blocked_total": sum(p["by_status"][Status.BLOCKED] for p in q["priorities"]),
        "pct_columns": [label for _f, label, _s in PCT_COLUMNS],
        "quality_total": _quality_rows([{**snap["quality"]["total"]}], (), tenant_id, since_7d),
        "quality_channel": _quality_rows(snap["quality"]["channel"], ("channel",), tenant_id, since_7d),
        "quality_provider": _quality_rows(snap["quality"]["provider"], ("channel", "provider"), tenant_id, since_7d),
        "quality_template": _quality_rows(snap["quality"]["template"], ("template_key", "channel"), tenant_id,
                                          since_7d),
    }


@staff_member_required
@permission_required("delivery.view_message", raise_exception=True)
def console(request: HttpRequest) -> HttpResponse:
    """Now (queue, rates, workers) and Quality (7-day rates, providers), for ops."""
    started = time.perf_counter()
    now = timezone.now()
    tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
    tenant_id = request.GET.get("tenant") or None
    if tenant_id and tenant_id not in {str(t) for t, _ in tenants}:
        tenant_id = None
    snap = dashboard.snapshot(tenant_id=tenant_id, now=now)
    context = {**_context(snap, tenant_id, now), "now": now, "tenants": tenants, "tenant_id": tenant_id,
               "refresh": settings.COMMS_DASHBOARD_REFRESH_SECONDS, "title": "Operations"}
    context["quota_rows"] = quota_usage.quota_rows(tenants, tenant_id=tenant_id, now=now)
    context["cost_rows"] = cost_usage.cost_rows(tenants, tenant_id=tenant_id, now=now)
    context["elapsed_ms"] = round((time.perf_counter() - started) * 1000)
    return render(request, "admin_console/dashboard.html", context)

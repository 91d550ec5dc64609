"""/console/analytics/ and /console/compliance/: the analytics API's figures as charts and tables.

Staff only, like the dashboard. Charts are server-rendered SVG (admin_console.charts): no script
runs on the page beyond the shared console.js (CSP). `?format=csv` downloads the same rows the API
gives (for every tenant, or the one the filter picked).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from admin_console import analytics, analytics_api, compliance
from admin_console.charts import PALETTE, Series, bar_chart, line_chart
from comms.errors import CommsError
from comms.models import Tenant


def _filters(request: HttpRequest) -> tuple[list, str | None]:
    tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
    tenant_id = request.GET.get("tenant") or None
    if tenant_id and tenant_id not in {str(t) for t, _ in tenants}:
        tenant_id = None
    return tenants, tenant_id


def _period_or_error(request: HttpRequest) -> tuple[analytics.Period | None, str]:
    try:
        return analytics.parse_period(request.GET.get("from"), request.GET.get("to")), ""
    except CommsError as exc:
        return None, exc.message


def _base(request: HttpRequest, title: str) -> dict:
    tenants, tenant_id = _filters(request)
    period, error = _period_or_error(request)
    return {"title": title, "tenants": tenants, "tenant_id": tenant_id, "period": period, "error": error,
            "from": request.GET.get("from", period.start.isoformat() if period else ""),
            "to": request.GET.get("to", period.end.isoformat() if period else ""),
            "query": request.GET.urlencode(),
            # the tenant filter is its own form: it carries the period along (_tenant_select.html)
            "keep_params": [(k, request.GET[k]) for k in ("from", "to") if request.GET.get(k)]}


@staff_member_required
@permission_required("delivery.view_message", raise_exception=True)
def analytics_page(request: HttpRequest) -> HttpResponse:
    """Sent per day, rates per channel, opens/clicks by hour and weekday, waits per priority."""
    ctx = _base(request, "analytics")
    period, tenant_id = ctx["period"], ctx["tenant_id"]
    if period is None:
        return render(request, "admin_console/analytics.html", ctx, status=400)
    daily = analytics.delivery(period=period, group_by=("day",), tenant_id=tenant_id)
    by_day = {r["day"]: r for r in daily}
    days = [period.start + timedelta(days=i) for i in range(period.days)]
    labels = [d.strftime("%m-%d") for d in days]
    pick = lambda key: [by_day.get(d.isoformat(), {}).get(key, 0) for d in days]  # noqa: E731
    ctx["volume_chart"] = line_chart(title="Sent and delivered per day (UTC)", x_labels=labels, series=[
        Series("sent", pick("sent"), PALETTE[0]), Series("delivered", pick("delivered"), PALETTE[1])])
    ctx["quality_chart"] = line_chart(
        title="Hard bounces and complaints, % of sent", x_labels=labels, unit="%",
        series=[Series("hard bounce", _rate(by_day, days, "hard_bounce_pct"), PALETTE[2]),
                Series("complaint", _rate(by_day, days, "complaint_pct"), PALETTE[3])],
        thresholds=[(settings.COMMS_ALERT_HARD_BOUNCE_PCT, "bounce limit"),
                    (settings.COMMS_ALERT_COMPLAINT_PCT, "complaint limit")])
    ctx["channels"] = analytics.delivery(period=period, group_by=("channel",), tenant_id=tenant_id)
    engagement = analytics.engagement(period=period, group_by=("device",), tenant_id=tenant_id)
    ctx["hour_chart"] = bar_chart(title="Unique opens by hour of day (UTC)",
                                  bars=[(f"{h['hour']:02d}", h["unique_opens"], "") for h in engagement["by_hour"]])
    ctx["weekday_chart"] = bar_chart(title="Unique opens and clicks by weekday", color=PALETTE[1],
                                     bars=[(w["weekday"], w["unique_opens"] + w["unique_clicks"], "")
                                           for w in engagement["by_weekday"]])
    ctx["devices"] = engagement["by_device"]
    perf = analytics.performance(period=period, group_by=("priority",), tenant_id=tenant_id)
    ctx["wait_chart"] = bar_chart(title="Due → sent, p90 by priority", unit="ms", color=PALETTE[2],
                                  bars=[(f"P{r['priority']}", r["wait_p90_ms"] or 0, "") for r in perf["rows"]])
    ctx["priorities"] = perf["rows"]
    ctx["errors"] = perf["errors_by_code"][:20]
    ctx["calls"], ctx["resolution"] = perf["provider_calls"], perf["percentile_resolution"]
    return render(request, "admin_console/analytics.html", ctx)


def _rate(by_day: dict, days: list, key: str) -> list[float | None]:
    return [by_day.get(d.isoformat(), {}).get(key) for d in days]


@staff_member_required
@permission_required("delivery.view_message", raise_exception=True)
def compliance_page(request: HttpRequest) -> HttpResponse:
    """The compliance report as tables, with the same report as CSV (`?format=csv`)."""
    ctx = _base(request, "compliance report")
    period, tenant_id = ctx["period"], ctx["tenant_id"]
    if period is None:
        return render(request, "admin_console/compliance.html", ctx, status=400)
    data = compliance.report(period=period, tenant_id=tenant_id)
    if request.GET.get("format") == "csv":
        return analytics_api.csv_response(data["rows"], f"compliance-{period.start}-{period.end}")
    ctx["report"] = data
    ctx["csv_query"] = "&".join(p for p in [ctx["query"], "format=csv"] if p)
    return render(request, "admin_console/compliance.html", ctx)

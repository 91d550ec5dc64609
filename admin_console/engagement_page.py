"""/console/engagement/: the stored engagement scores (tracking.scores) as a person would look at them:
the distribution of engagement_score, the channel each recipient engages on (the "best channel first"
routing option's mix), and the win-back candidates (high reengagement_score) with their best channel.

Staff with tracking.view_recipientengagement (every comms role has it), like the other console pages;
the tenant filter is the shared one (console.js submits it; no inline script, CSP).
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from admin_console.charts import PALETTE, bar_chart
from comms.models import Tenant
from tracking.scores import engagement_overview

NO_CHANNEL = "none yet"  # recipients who never engaged: no recommendation


@staff_member_required
@permission_required("tracking.view_recipientengagement", raise_exception=True)
def engagement_page(request: HttpRequest) -> HttpResponse:
    tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
    tenant_id = request.GET.get("tenant") or None
    if tenant_id and tenant_id not in {str(t) for t, _ in tenants}:
        tenant_id = None
    data = engagement_overview(tenant_id=tenant_id)
    histogram = bar_chart(title="Recipients by engagement score", bars=[
        (f"{b['from']:.1f}", float(b["recipients"]), "") for b in data["histogram"]])
    mix = [(channel or NO_CHANNEL, n) for channel, n in data["channel_mix"]]
    mix_chart = bar_chart(title="Best channel (recommendation mix)", color=PALETTE[1],
                          bars=[(label, float(n), "") for label, n in mix])
    total = data["recipients"] or 1
    return render(request, "admin_console/engagement.html", {
        "title": "engagement", "tenants": tenants, "tenant_id": tenant_id, "keep_params": [],
        "data": data, "histogram_chart": histogram, "mix_chart": mix_chart,
        "mix": [(label, n, round(100.0 * n / total, 1)) for label, n in mix],
    })

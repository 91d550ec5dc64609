"""Console page: sends per pool (stream) and warm-up ladder progress, per mailbox-provider group."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from admin_console.dashboard import messages_url, since_param
from comms.enums import Status
from comms.models import Tenant
from delivery.deliverability import pools, warmup

SEND_COLUMNS = [Status.QUEUED, Status.SENT, Status.DELIVERED, Status.DEFERRED, Status.FAILED, Status.BOUNCED]


@staff_member_required
@permission_required("delivery.view_message", raise_exception=True)
def pools_page(request: HttpRequest) -> HttpResponse:
    """Where each stream's mail went in the last 24 h, and where each warm-up ladder stands today."""
    now = timezone.now()
    tenants = list(Tenant.objects.order_by("slug").values_list("id", "slug"))
    tenant_id = request.GET.get("tenant") or None
    if tenant_id and tenant_id not in {str(t) for t, _ in tenants}:
        tenant_id = None
    since = since_param(now, "24h")
    sends = []
    for row in pools.pool_sends(since=now - timedelta(hours=24), tenant_id=tenant_id):
        base = {"pool__exact": row["pool"], "channel__exact": row["channel"], "created_at__gte": since}
        sends.append({**row, "label": row["pool"] or "(no pool)", "href": messages_url(tenant_id, **base),
                      "cells": [{"n": row["by_status"].get(s, 0),
                                 "href": messages_url(tenant_id, status__exact=s, **base)} for s in SEND_COLUMNS]})
    ladders = warmup.progress(today=now.date(), tenant_id=tenant_id)
    for row in ladders:
        row["pct"] = (min(100, round(100 * row["sent"] / row["cap"])) if row["cap"] else
                      (100 if row["cap"] == 0 else None))
        row["href"] = reverse("admin:delivery_warmupladder_change", args=[row["ladder_id"]])
        row["deferred_href"] = messages_url(tenant_id, status__exact="deferred", failure_code__exact=warmup.CODE,
                                            pool__exact=row["pool"])
    return render(request, "admin_console/pools.html", {
        "title": "Pools and warm-up", "now": now, "tenants": tenants, "tenant_id": tenant_id, "sends": sends,
        "send_columns": SEND_COLUMNS, "ladders": ladders,
    })

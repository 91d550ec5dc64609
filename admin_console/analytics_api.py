"""GET /api/v1/analytics/{delivery,engagement,performance} and /api/v1/compliance/report, JSON or CSV.

Thin views: parse the period and dimensions (typed 400s), call one reader for the key's tenant,
answer JSON, or the flat `rows` as CSV when `?format=csv` or `Accept: text/csv` asks for it.
"""

from __future__ import annotations

import csv
import io

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from admin_console import analytics, compliance, dashboard
from comms.errors import error_class

UnknownFormat = error_class("COMMS_ANALYTICS_UNKNOWN_FORMAT", 400, "format must be json or csv.")

PERIOD_PARAMS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First UTC day (default: 29 days before `to`)."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last UTC day, included (default: today)."),
    OpenApiParameter("format", {"type": "string", "enum": ["json", "csv"]}, description="Or Accept: text/csv."),
]


def wants_csv(request) -> bool:
    """`?format=` wins over Accept; anything but json/csv is a typed 400."""
    fmt = request.GET.get("format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise UnknownFormat(details={"format": fmt[:32], "allowed": ["json", "csv"]})
        return fmt == "csv"
    return "text/csv" in request.META.get("HTTP_ACCEPT", "")


def csv_response(rows: list[dict], filename: str) -> HttpResponse:
    """The rows as RFC 4180 CSV; columns in first-seen order across all rows."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["empty"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def retained_from(period: analytics.Period) -> str:
    """The first day the daily aggregate still holds (older days are pruned by the rollup)."""
    oldest = timezone.now().date() - timezone.timedelta(days=settings.COMMS_STATS_RETENTION_DAYS)
    return max(period.start, oldest).isoformat()


def run(request, kind: str, tenant_id) -> tuple[dict, list[dict]]:
    """One report as (JSON body, CSV rows); shared by the API and the console's CSV links."""
    q = request.GET
    period = analytics.parse_period(q.get("from"), q.get("to"))
    now = timezone.now().isoformat()
    if kind == "compliance":
        data = compliance.report(period=period, tenant_id=tenant_id)
        return {"generated_at": now, "period": period.as_dict(), **data}, data["rows"]
    dims, default = {"delivery": (analytics.DELIVERY_DIMS, ("channel",)),
                     "engagement": (analytics.ENGAGEMENT_DIMS, ("day",)),
                     "performance": (analytics.PERFORMANCE_DIMS, ("priority",))}[kind]
    group_by = analytics.parse_group_by(q.get("group_by"), dims, default)
    head = {"generated_at": now, "period": period.as_dict(), "group_by": list(group_by)}
    if kind == "delivery":
        rows = analytics.delivery(period=period, group_by=group_by, tenant_id=tenant_id)
        return {**head, "retained_from": retained_from(period), "rows": rows}, rows
    if kind == "engagement":
        data = analytics.engagement(period=period, group_by=group_by, tenant_id=tenant_id)
        return {**head, **data}, data["rows"]
    data = analytics.performance(period=period, group_by=group_by, tenant_id=tenant_id)
    return {**head, **data, "provider_response": provider_response()}, data["rows"]


def provider_response() -> list[dict]:
    """Each provider's mean and p95 response time over the last hour and day (delivery.health, Redis)."""
    keys = ("avg_latency_ms_1h", "p95_latency_ms_1h", "avg_latency_ms_24h", "p95_latency_ms_24h")
    return [{"channel": p.get("channel"), "provider": p.get("provider"), **{k: p.get(k) for k in keys}}
            for p in dashboard.providers()]


class _ReportApi(APIView):
    required_scopes = {"GET": "messages:read"}
    kind = ""

    def perform_content_negotiation(self, request, force=False):
        """JSON for DRF; CSV is built here. DRF would 404 `?format=csv` and 406 `Accept: text/csv`
        (it reads both as a request for a renderer it does not have)."""
        return JSONRenderer(), JSONRenderer.media_type

    def report(self, request):
        csv_wanted = wants_csv(request)
        body, rows = run(request, self.kind, request.user.tenant.id)
        if csv_wanted:
            return csv_response(rows, f"{self.kind}-{body['period']['from']}-{body['period']['to']}")
        return Response(body)


def _schema(dims: dict | None):
    extra = [OpenApiParameter("group_by", OpenApiTypes.STR, description="Comma-separated: " + ", ".join(dims))] \
        if dims else []
    return extend_schema(responses=OpenApiTypes.OBJECT, parameters=PERIOD_PARAMS + extra)


class DeliveryAnalyticsApi(_ReportApi):
    """Sent/delivered/failed/bounced/complained/opened/clicked counts and rates per group."""

    kind = "delivery"

    @_schema(analytics.DELIVERY_DIMS)
    def get(self, request):
        return self.report(request)


class EngagementAnalyticsApi(_ReportApi):
    """Opens and clicks (total and unique) per group, by device class, UTC hour and weekday."""

    kind = "engagement"

    @_schema(analytics.ENGAGEMENT_DIMS)
    def get(self, request):
        return self.report(request)


class PerformanceAnalyticsApi(_ReportApi):
    """Due-to-sent percentiles and failure rates per group, errors by code, provider response times."""

    kind = "performance"

    @_schema(analytics.PERFORMANCE_DIMS)
    def get(self, request):
        return self.report(request)


class ComplianceReportApi(_ReportApi):
    """Consents, unsubscribes (and time to honour), STOP/START, suppressions, erasures, bounce/complaint."""

    kind = "compliance"

    @_schema(None)
    def get(self, request):
        return self.report(request)

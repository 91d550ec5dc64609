"""Stats API (the dashboard's figures as JSON, for the key's tenant), Prometheus /metrics and /readyz."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from rest_framework.response import Response
from rest_framework.views import APIView

from admin_console import dashboard, quota_usage, stats, workers
from comms import errors
from comms.readiness import stores_check
from delivery.deliverability.dkim import unsigned_counts


def _days(request) -> int:
    raw = request.query_params.get("days", "7")
    try:
        days = int(raw)
    except ValueError:
        raise errors.ValidationFailed("days must be a whole number of days (1-30).", details={"field": "days"}) from None
    if not 1 <= days <= 30:
        raise errors.ValidationFailed("days must be between 1 and 30.", details={"field": "days"})
    return days


class StatsQueueApi(APIView):
    """Queue depth per priority and status, reasons, oldest queued age per priority, workers alive."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        now = timezone.now()
        data = dashboard.queue(tenant_id=request.user.tenant.id, now=now)
        return Response({"generated_at": now.isoformat(), **data, "workers_alive": len(dashboard.worker_list())})


# What _days accepts, so the schema says it (schemathesis sent 0 and 31 as valid before).
DAYS = OpenApiParameter("days", {"type": "integer", "minimum": 1, "maximum": 30},
                        description="Window in days, 1-30 (default 7).")


class StatsChannelsApi(APIView):
    """Send rates (5 min / 1 h / 24 h) and quality per channel and provider, provider health."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[DAYS])
    def get(self, request):
        now, tenant_id, days = timezone.now(), request.user.tenant.id, _days(request)
        grouped = stats.quality_all(tenant_id=tenant_id, now=now, days=days)
        by_provider = dashboard.quality(by="provider", rows=grouped["provider"])
        rates = dashboard.rates(tenant_id=tenant_id, now=now)
        seen = {(r["channel"], r["provider"]) for r in rates} | {(q["channel"], q["provider"]) for q in by_provider}
        return Response({
            "generated_at": now.isoformat(), "days": days, "rates": rates,
            "quality": {"channel": dashboard.quality(by="channel", rows=grouped["channel"]),
                        "provider": by_provider,
                        "rolling": dashboard.rolling_quality(tenant_id=tenant_id, now=now)},
            "thresholds": dashboard.thresholds(),
            "providers": dashboard.providers(seen=seen),
        })


class StatsTemplatesApi(APIView):
    """Quality per template and channel over the last `days` days (default 7)."""

    required_scopes = {"GET": "messages:read"}

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[DAYS])
    def get(self, request):
        now, days = timezone.now(), _days(request)
        rows = dashboard.quality(by="template", tenant_id=request.user.tenant.id, now=now, days=days)
        return Response({"generated_at": now.isoformat(), "days": days, "results": rows})


class _Collector:
    """Computes every gauge at scrape time from the aggregates (a scrape costs a few index reads)."""

    def collect(self):
        now = timezone.now()
        depth = GaugeMetricFamily("comms_queue_messages", "Messages per priority, channel and status, now.",
                                  labels=["priority", "channel", "status"])
        for row in stats.queue_depth():
            depth.add_metric([f"P{row.priority}", row.channel, row.status], row.n)
        yield _merge(depth)
        oldest = GaugeMetricFamily("comms_queue_oldest_age_seconds",
                                   "Age of the oldest due, unclaimed message per priority (0 when none).",
                                   labels=["priority"])
        for p, age in stats.oldest_queued(now=now).items():
            oldest.add_metric([f"P{p}"], age or 0.0)
        yield oldest
        events = GaugeMetricFamily("comms_events", "Delivery-log events per channel and provider in a trailing window.",
                                   labels=["channel", "provider", "event", "window"])
        for r in stats.event_rates(now=now):
            for window, value in (("5m", r.last_5m), ("1h", r.last_1h), ("24h", r.last_24h)):
                events.add_metric([r.channel, r.provider, r.event, window], value)
        yield events
        ratios = GaugeMetricFamily("comms_quality_ratio", "7-day rates per channel (fraction of sent).",
                                   labels=["channel", "metric"])
        for q in stats.quality(by="channel", now=now):
            for metric, value in q.as_dict().items():
                if metric.endswith("_pct") and value is not None:
                    ratios.add_metric([q.key[0], metric[:-4]], value / 100)
        yield ratios
        circuit = GaugeMetricFamily("comms_provider_circuit_open", "1 when a provider's circuit is open or half-open.",
                                    labels=["channel", "provider"])
        for p in dashboard.providers():
            circuit.add_metric([p["channel"], p["provider"]], 0 if p.get("state") == "closed" else 1)
        yield circuit
        alive = GaugeMetricFamily("comms_workers_alive", "Celery workers with a fresh heartbeat.")
        alive.add_metric([], len(dashboard.worker_list()))
        yield alive
        unsigned = GaugeMetricFamily("comms_dkim_unsigned", "Emails sent without a DKIM signature (no sending "
                                     "domain with an active key for the From domain), per From domain.",
                                     labels=["domain"])
        for domain, n in sorted(unsigned_counts().items()):
            unsigned.add_metric([domain], n)
        yield unsigned
        yield from quota_usage.metric_families(now=now)


def _merge(family: GaugeMetricFamily) -> GaugeMetricFamily:
    """One sample per label set (the gauge has a row per reason too; Prometheus wants them summed)."""
    totals: dict[tuple, float] = {}
    for sample in family.samples:
        key = tuple(sorted(sample.labels.items()))
        totals[key] = totals.get(key, 0) + sample.value
    merged = GaugeMetricFamily(family.name, family.documentation, labels=["priority", "channel", "status"])
    for key, value in sorted(totals.items()):
        labels = dict(key)
        merged.add_metric([labels["priority"], labels["channel"], labels["status"]], value)
    return merged


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With COMMS_METRICS_TOKEN set, a matching Bearer token is required."""
    token = settings.COMMS_METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return JsonResponse({"code": errors.Unauthenticated.code, "message": "A metrics token is required."},
                                status=401)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness for orchestrators: the database and Redis answer and at least one worker is alive."""
    checks = stores_check()
    try:
        alive = workers.alive() if checks["redis"] == "ok" else []
        checks["workers"] = "ok" if alive else "error: no worker heartbeat"
    except Exception as exc:
        alive, checks["workers"] = [], f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks, "workers": len(alive)},
                        status=200 if ready else 503)



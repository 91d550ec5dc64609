"""/console/anomalies/: open and recent anomaly alerts with their evidence (series, baseline, observed,
sigma), who acknowledged each, and, per open alert, the last day of the series against its baseline
(server-side SVG). Staff holding tracking.change_anomalyalert acknowledge from the page (a plain POST
form: no script, CSP); the service records who and when and audits it, as the API does."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from admin_console import charts
from comms.audit import client_ip
from tracking.models import AnomalyAlert, AnomalySeries
from tracking.services.anomaly_alerts import AnomalyAlreadyAcknowledged, AnomalyNotFound, anomaly_alert_acknowledge


def _chart(series: AnomalySeries) -> str:
    points = series.recent[-24:]
    step = max(1, len(points) // 6)
    labels = [p[0][11:16] if i % step == 0 else "" for i, p in enumerate(points)]
    return charts.line_chart(title=series.key, x_labels=labels, series=[
        charts.Series("observed", [p[1] for p in points], charts.PALETTE[0]),
        charts.Series("baseline", [p[2] for p in points], charts.PALETTE[1])])


@staff_member_required
@permission_required("delivery.view_message", raise_exception=True)
def anomalies(request: HttpRequest) -> HttpResponse:
    open_alerts = list(AnomalyAlert.objects.filter(resolved_at__isnull=True).order_by("-hour")[:50])
    recent = list(AnomalyAlert.objects.filter(resolved_at__isnull=False).order_by("-hour")[:50])
    series = {s.key: s for s in AnomalySeries.objects.filter(key__in=[a.series for a in open_alerts[:6]])}
    context = {
        "title": "Anomalies", "now": timezone.now(), "refresh": settings.COMMS_DASHBOARD_REFRESH_SECONDS,
        "open": open_alerts, "recent": recent, "watched": AnomalySeries.objects.count(),
        "charts": [_chart(series[a.series]) for a in open_alerts[:6] if a.series in series],
        "can_acknowledge": request.user.has_perm("tracking.change_anomalyalert"),
    }
    return render(request, "admin_console/anomalies.html", context)


@staff_member_required
@permission_required("tracking.change_anomalyalert", raise_exception=True)
@require_POST
def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    """Acknowledge one alert, then back to the list (already acknowledged or gone: the list says so)."""
    try:
        anomaly_alert_acknowledge(alert_id=alert_id, actor=request.user, ip=client_ip(request))
    except (AnomalyAlreadyAcknowledged, AnomalyNotFound):
        pass
    return redirect("console-anomalies")

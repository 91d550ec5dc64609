"""The synthetic probes page at /console/probes/: the latest probe per channel and provider, the last
day's timings as a chart (server-side SVG, like the dashboard), and the recent probes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from admin_console import charts
from delivery.deliverability.probes import probe_series


def _chart(probes: list) -> str:
    """Seconds to delivered (to sent where delivery cannot be seen) per channel/provider, per round."""
    rounds = sorted({p.created_at.replace(second=0, microsecond=0) for p in probes})
    index = {at: i for i, at in enumerate(rounds)}
    lines: dict[str, list[float | None]] = {}
    for p in probes:
        key = f"{p.channel}/{p.provider or '-'}"
        values = lines.setdefault(key, [None] * len(rounds))
        # Where delivery cannot be seen (SMTP without the sink) the probe ends at 'sent': chart that time;
        # a probe that timed out or failed has no point at all (a gap, not a dip to zero).
        seconds = p.delivered_seconds if p.delivered_seconds is not None else (
            p.sent_seconds if p.state == "sent" else None)
        values[index[p.created_at.replace(second=0, microsecond=0)]] = seconds
    series = [charts.Series(label, values, charts.PALETTE[i % len(charts.PALETTE)])
              for i, (label, values) in enumerate(sorted(lines.items()))]
    step = max(1, len(rounds) // 8)  # at most ~8 x labels, so they never overlap
    labels = [at.strftime("%H:%M") if i % step == 0 else "" for i, at in enumerate(rounds)]
    # An SLO far above every point would flatten the lines into the axis: draw only the SLOs within
    # reach of the data (the page states both SLOs in words anyway).
    top = max((v for values in lines.values() for v in values if v is not None), default=0.0)
    thresholds = [(slo, label) for slo, label in ((settings.COMMS_PROBE_SLO_DELIVERED_SECONDS, "delivered SLO"),
                                                  (settings.COMMS_PROBE_SLO_SENT_SECONDS, "sent SLO"))
                  if slo <= 3 * top]
    return charts.line_chart(title="Seconds to delivered (last 24 h)", x_labels=labels, series=series, unit="s",
                             thresholds=thresholds)


@staff_member_required
@permission_required("delivery.view_message", raise_exception=True)
def probes(request: HttpRequest) -> HttpResponse:
    series = probe_series(since=timedelta(days=1))
    latest: dict[tuple[str, str], object] = {}
    for p in series:
        latest[(p.channel, p.provider)] = p
    context = {
        "title": "Probes", "now": timezone.now(), "refresh": settings.COMMS_DASHBOARD_REFRESH_SECONDS,
        "latest": [latest[k] for k in sorted(latest)], "recent": list(reversed(series))[:50],
        "chart": _chart(series) if series else "", "configured": settings.COMMS_PROBE_RECIPIENTS,
        "slo_sent": settings.COMMS_PROBE_SLO_SENT_SECONDS, "slo_delivered": settings.COMMS_PROBE_SLO_DELIVERED_SECONDS,
    }
    return render(request, "admin_console/probes.html", context)

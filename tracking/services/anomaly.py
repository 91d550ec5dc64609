"""Judge each watched series once per hour, keep its baseline, open and resolve anomaly alerts.

The points come from the aggregates (admin_console.anomaly_feed builds them: tracking sits below the
console); this service owns the state (AnomalySeries), the alerts (AnomalyAlert) and the alert hook
(COMMS_OPS_ALERT, i.e. a log line and the optional COMMS_ALERT_WEBHOOK_URL post).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from tracking.anomaly import SMS_SPEND, Params, State, hour_of_week, observe
from tracking.models import AnomalyAlert, AnomalySeries

# Per kind: counts or rates, which way is bad, how much volume a judgement needs.
KINDS: dict[str, Params] = {
    "send_rate": Params(direction="both", min_volume=50),
    "failure_rate": Params(is_rate=True, warmup=24, min_volume=50),
    "failure_code": Params(direction="up", min_volume=20),
    "bounce_rate": Params(is_rate=True, warmup=6, min_volume=100),
    "complaint_rate": Params(is_rate=True, warmup=6, min_volume=100),
    "queue_age": Params(direction="up", min_volume=60),
    "sms_spend": SMS_SPEND,
}
# The ops alert kind per series kind (the SMS spend alert kept its seed-001 name).
ALERT_KINDS = {"sms_spend": "cost.sms_spend_anomaly"}
RECENT = 48  # points kept for the console's evidence


@dataclass(frozen=True)
class Point:
    """One hour of one series. With ``cumulative`` the numbers are running totals (CampaignMetrics
    counters, the queue gauge) and the hour's value is the difference from the previous total."""

    key: str
    kind: str
    value: float
    volume: float = 0.0
    cumulative: bool = False
    labels: dict | None = None  # the series' dimensions, e.g. {"provider": "twilio", "code": "30003"}
    tenant_id: str | None = None  # set for a tenant's own series (SMS spend)


def _hour_value(series: AnomalySeries, point: Point) -> tuple[float, float] | None:
    if not point.cumulative:
        return point.value, point.volume
    prev = series.state.get("prev")
    series.state["prev"] = [point.value, point.volume]
    if prev is None:
        return None  # the first total only sets the origin
    num, den = max(point.value - prev[0], 0.0), max(point.volume - prev[1], 0.0)
    if KINDS[point.kind].is_rate:
        return (num / den if den else 0.0), den
    return num, num


def _notify(alert: AnomalyAlert) -> None:
    path = settings.COMMS_OPS_ALERT
    if not path:
        return
    labels = alert.evidence.get("labels") or {}
    import_string(path)(kind=ALERT_KINDS.get(alert.kind, "anomaly.alert"),
                        text=f"{alert.series}: {alert.observed:g} against a baseline of {alert.baseline:g} "
                             f"(sigma {alert.sigma:g}, z {alert.z:.1f})",
                        data={"id": alert.pk, "series": alert.series, "series_kind": alert.kind,
                              "hour": alert.hour.isoformat(), "observed": alert.observed, "baseline": alert.baseline,
                              "sigma": alert.sigma, "z": alert.z, "volume": alert.volume, **labels,
                              **({"tenant": str(alert.tenant_id)} if alert.tenant_id else {})})


def anomaly_observe(*, hour: datetime, points: list[Point]) -> list[AnomalyAlert]:
    """Judge the hour starting at ``hour`` for every point (each series at most once per hour: a
    repeated tick is a no-op), open alerts for series that stayed out of their baseline, resolve
    those that came back. Returns the alerts opened."""
    opened: list[AnomalyAlert] = []
    for point in points:
        params = KINDS[point.kind]
        with transaction.atomic():
            series, _ = AnomalySeries.objects.select_for_update().get_or_create(
                key=point.key, defaults={"kind": point.kind})
            if series.last_hour is not None and series.last_hour >= hour:
                continue
            measured = _hour_value(series, point)
            series.last_hour = hour
            if measured is None:
                series.save(update_fields=["state", "last_hour"])
                continue
            value, volume = measured
            state = State.from_json(series.state)
            verdict = observe(state, value=value, volume=volume, slot=hour_of_week(hour), params=params)
            series.state = {**series.state, **state.to_json()}
            series.recent = [*series.recent, [hour.isoformat(), round(value, 6), round(verdict.expected, 6)]][-RECENT:]
            series.save(update_fields=["state", "last_hour", "recent"])
            if verdict.fire:
                alert = AnomalyAlert.objects.create(
                    series=point.key, kind=point.kind, hour=hour, observed=value, baseline=verdict.expected,
                    sigma=verdict.sigma, z=verdict.z, volume=volume, tenant_id=point.tenant_id,
                    evidence={"points": series.recent[-24:], "k": params.k, "persistence": params.persistence,
                              "direction": params.direction, "labels": point.labels or {}})
                transaction.on_commit(lambda a=alert: _notify(a))
                opened.append(alert)
            elif verdict.recover:
                AnomalyAlert.objects.filter(series=point.key, resolved_at__isnull=True).update(
                    resolved_at=timezone.now())
    return opened

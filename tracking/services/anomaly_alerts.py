"""Reading and acknowledging anomaly alerts (the API and the console share these).

An acknowledgement says "a person has seen this and is on it": it records who and when, writes an
audit row, and changes nothing else (the alert still resolves when its series comes back; a resolved
alert can still be acknowledged, e.g. after a night incident). Acknowledging twice is refused with
the first acknowledgement in the error, so two on-call people learn of each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from comms.audit import audit_record
from comms.errors import error_class
from tracking.models import AnomalyAlert

AnomalyNotFound = error_class("COMMS_ANOMALY_NOT_FOUND", 404, "No such anomaly alert.")
AnomalyAlreadyAcknowledged = error_class("COMMS_ANOMALY_ALREADY_ACKNOWLEDGED", 409,
                                         "This anomaly alert is already acknowledged.")
AnomalyFilterInvalid = error_class("COMMS_ANOMALY_FILTER_INVALID", 400, "The anomaly filter is not valid.")

STATES = ("open", "resolved", "acknowledged", "unacknowledged", "all")
MAX_PERIOD = timedelta(days=366)


def actor_label(actor: Any) -> str:
    """The same label the audit log gives the actor (user name, api-key:<prefix> or system)."""
    if actor is None:
        return "system"
    if hasattr(actor, "api_key"):
        return f"api-key:{actor.api_key.prefix}"
    if hasattr(actor, "get_username"):
        return actor.get_username()
    return str(actor)[:200]


def anomaly_alert_list(*, tenant_id: Any = None, state: str = "all", kind: str | None = None,
                       series: str | None = None, since: datetime | None = None,
                       until: datetime | None = None) -> QuerySet[AnomalyAlert]:
    """Alerts newest first. With ``tenant_id`` (an API key's tenant): the system-wide alerts and that
    tenant's own, never another tenant's. ``series`` ending in ``*`` matches a prefix
    (``failure_code:twilio:*``)."""
    if state not in STATES:
        raise AnomalyFilterInvalid(f"Unknown status '{state[:32]}'.",
                                   details={"field": "status", "allowed": list(STATES)})
    if since and until and since > until:
        raise AnomalyFilterInvalid("from lies after to.", details={"from": since.isoformat(), "to": until.isoformat()})
    if since and until and until - since > MAX_PERIOD:
        raise AnomalyFilterInvalid("The period is longer than 366 days.", details={"max_days": MAX_PERIOD.days})
    qs = AnomalyAlert.objects.all()
    if tenant_id is not None:
        qs = qs.filter(Q(tenant_id__isnull=True) | Q(tenant_id=tenant_id))
    qs = qs.filter(**{"open": {"resolved_at__isnull": True}, "resolved": {"resolved_at__isnull": False},
                      "acknowledged": {"acknowledged_at__isnull": False},
                      "unacknowledged": {"acknowledged_at__isnull": True}, "all": {}}[state])
    if kind:
        qs = qs.filter(kind=kind)
    if series:
        qs = qs.filter(series__startswith=series[:-1]) if series.endswith("*") else qs.filter(series=series)
    if since:
        qs = qs.filter(hour__gte=since)
    if until:
        qs = qs.filter(hour__lt=until)
    return qs.order_by("-hour", "-id")


@transaction.atomic
def anomaly_alert_acknowledge(*, alert_id: int, actor: Any, tenant_id: Any = None, note: str = "",
                              ip: str | None = None) -> AnomalyAlert:
    """Mark the alert acknowledged by ``actor`` now (audited). ``tenant_id`` limits it as the list does."""
    qs = AnomalyAlert.objects.select_for_update()
    if tenant_id is not None:
        qs = qs.filter(Q(tenant_id__isnull=True) | Q(tenant_id=tenant_id))
    alert = qs.filter(pk=alert_id).first()
    if alert is None:
        raise AnomalyNotFound(details={"id": alert_id})
    if alert.acknowledged_at is not None:
        raise AnomalyAlreadyAcknowledged(
            f"Acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at.isoformat()}.",
            details={"id": alert.pk, "acknowledged_by": alert.acknowledged_by,
                     "acknowledged_at": alert.acknowledged_at.isoformat()})
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = actor_label(actor)[:200]
    alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    audit_record(actor=actor, action="anomaly.acknowledge", target=alert, reason=note[:500], ip=ip,
                 tenant=getattr(actor, "tenant", None),
                 diff={"series": alert.series, "acknowledged_at": alert.acknowledged_at.isoformat()})
    return alert

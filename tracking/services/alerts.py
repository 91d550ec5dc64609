"""Rolling 7-day hard-bounce and complaint rates, alert records, and variant guardrails.

Seed 001: hard bounces above 0.3 % or complaints above 0.1 % over seven days put a sending
reputation at risk. Each breach opens one DeliverabilityAlert (kept open while it lasts, resolved
when the rate falls back), writes a warning log line, optionally posts to an ops webhook, and an
experiment variant that breaches is paused (its weight set to 0, the old weight kept) so the
remaining variants take its traffic.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from comms.audit import audit_record
from delivery import selectors as delivery_selectors
from delivery.models import Message
from templates_app.models import TemplateVersion
from tracking.models import DeliverabilityAlert, EventType, MessageEvent

log = logging.getLogger(__name__)
WINDOW = timedelta(days=7)
# What the guardrails count (experiments' variants, providers, domains, and template rollouts).
HARD_BOUNCE = Q(event_type=EventType.BOUNCED, bounce_type="hard")
COMPLAINT = Q(event_type=EventType.COMPLAINED)


@dataclass
class Rate:
    subject: str
    key: str
    sent: int
    hard_bounces: int
    complaints: int
    tenant_id: object = None

    def pct(self, count: int) -> float:
        return count * 100.0 / self.sent if self.sent else 0.0


def sending_domain(provider: str) -> str:
    """The From domain a provider sends with (its ChannelProvider options, else DEFAULT_FROM_EMAIL)."""
    from email.utils import parseaddr

    options = delivery_selectors.provider_options(name=provider)
    address = parseaddr(str(options.get("from_email") or settings.DEFAULT_FROM_EMAIL))[1]
    return address.rpartition("@")[2].lower() or "unknown"


def rolling_rates(*, now: datetime | None = None) -> list[Rate]:
    """Per provider and per experiment variant over the last seven days."""
    now = now or timezone.now()
    start = now - WINDOW
    sent = Message.objects.filter(sent_at__gte=start, sent_at__lte=now)
    events = MessageEvent.objects.filter(timestamp__gte=start, timestamp__lte=now,
                                         event_type__in=[EventType.BOUNCED, EventType.COMPLAINED])
    hard, complaint = HARD_BOUNCE, COMPLAINT
    out: list[Rate] = []
    by_provider = {row["provider"]: row["n"] for row in sent.exclude(provider="").values("provider")
                   .annotate(n=Count("id"))}
    bad = {row["message__provider"]: row for row in events.values("message__provider").annotate(
        hard=Count("message_id", filter=hard, distinct=True), complaints=Count("message_id", filter=complaint,
                                                                                distinct=True))}
    domains: dict[str, Rate] = {}
    for provider, n in by_provider.items():
        row = bad.get(provider, {})
        out.append(Rate(DeliverabilityAlert.Subject.PROVIDER, provider, n, row.get("hard", 0), row.get("complaints", 0)))
        domain = sending_domain(provider)
        agg = domains.setdefault(domain, Rate(DeliverabilityAlert.Subject.SENDING_DOMAIN, domain, 0, 0, 0))
        agg.sent += n
        agg.hard_bounces += row.get("hard", 0)
        agg.complaints += row.get("complaints", 0)
    out.extend(domains.values())
    by_variant = {(r["tenant_id"], r["template_version_id"], r["variant"]): r["n"] for r in
                  sent.exclude(variant="").filter(template_version_id__isnull=False)
                  .values("tenant_id", "template_version_id", "variant").annotate(n=Count("id"))}
    bad_variant = {(r["message__tenant_id"], r["message__template_version_id"], r["message__variant"]): r for r in
                   events.exclude(message__variant="").values("message__tenant_id", "message__template_version_id",
                                                              "message__variant")
                   .annotate(hard=Count("message_id", filter=hard, distinct=True),
                             complaints=Count("message_id", filter=complaint, distinct=True))}
    for (tenant_id, version_id, variant), n in by_variant.items():
        row = bad_variant.get((tenant_id, version_id, variant), {})
        out.append(Rate(DeliverabilityAlert.Subject.VARIANT, f"{version_id}:{variant}", n, row.get("hard", 0),
                        row.get("complaints", 0), tenant_id))
    return out


def _notify(alert: DeliverabilityAlert) -> None:
    log.warning("deliverability alert: %s rate %.3f%% > %.3f%% on %s %s (%d of %d sent in 7 days)%s",
                alert.metric, alert.rate, alert.threshold, alert.subject, alert.key, alert.count, alert.sent,
                f"; {alert.action}" if alert.action else "")
    url = settings.COMMS_ALERT_WEBHOOK_URL
    if not url:
        return
    body = json.dumps({"type": "deliverability.alert", "metric": alert.metric, "subject": alert.subject,
                       "key": alert.key, "rate": alert.rate, "threshold": alert.threshold, "sent": alert.sent,
                       "count": alert.count, "action": alert.action}).encode()
    try:  # an operator's URL from settings (not user input); a failure must not stop the check
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}),
                               timeout=5).close()
    except OSError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)


def ops_notify(*, kind: str, text: str, data: dict) -> None:
    """An ops alert from a layer below tracking (deliverability probes): a warning log line and the
    same optional webhook the rate alerts post to (reached through COMMS_OPS_ALERT)."""
    log.warning("ops alert %s: %s", kind, text)
    url = settings.COMMS_ALERT_WEBHOOK_URL
    if not url:
        return
    body = json.dumps({"type": kind, "text": text, **data}).encode()
    try:  # an operator's URL from settings (not user input); a failure must not stop the caller
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}),
                               timeout=5).close()
    except OSError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)


@transaction.atomic
def variant_pause(*, version_id: int, variant: str, reason: str) -> bool:
    """Stop assigning recipients to a variant: weight 0 (bucketing skips it), old weight kept."""
    version = TemplateVersion.objects.select_for_update().select_related("template").filter(pk=version_id).first()
    if version is None:
        return False
    experiment = dict(version.experiment or {})
    variants = [dict(v) for v in experiment.get("variants", [])]
    changed = False
    for v in variants:
        if v.get("key") == variant and float(v.get("weight", 0)) > 0:
            v["paused"] = {"at": timezone.now().isoformat(), "reason": reason, "weight": v["weight"]}
            v["weight"] = 0
            changed = True
    if not changed:
        return False
    experiment["variants"] = variants
    TemplateVersion.objects.filter(pk=version.pk).update(experiment=experiment)
    audit_record(actor=None, action="experiment.variant_paused", target=version, tenant=version.template.tenant,
                 diff={"variant": variant}, reason=reason)
    return True


def alerts_check(*, now: datetime | None = None) -> list[DeliverabilityAlert]:
    """Open alerts for new breaches, resolve those that recovered; returns the alerts opened."""
    now = now or timezone.now()
    thresholds = {DeliverabilityAlert.Metric.HARD_BOUNCE: settings.COMMS_ALERT_HARD_BOUNCE_PCT,
                  DeliverabilityAlert.Metric.COMPLAINT: settings.COMMS_ALERT_COMPLAINT_PCT}
    opened: list[DeliverabilityAlert] = []
    for rate in rolling_rates(now=now):
        for metric, threshold in thresholds.items():
            count = rate.hard_bounces if metric == DeliverabilityAlert.Metric.HARD_BOUNCE else rate.complaints
            pct = rate.pct(count)
            current = DeliverabilityAlert.objects.filter(subject=rate.subject, key=rate.key, metric=metric,
                                                         resolved_at__isnull=True).first()
            if pct > threshold and rate.sent >= settings.COMMS_ALERT_MIN_SENT:
                if current is not None:
                    DeliverabilityAlert.objects.filter(pk=current.pk).update(rate=pct, sent=rate.sent, count=count,
                                                                             window_end=now)
                    continue
                action = ""
                if rate.subject == DeliverabilityAlert.Subject.VARIANT:
                    version_id, _, variant = rate.key.partition(":")
                    if variant_pause(version_id=int(version_id), variant=variant,
                                     reason=f"{metric} {pct:.2f}% > {threshold}% over 7 days"):
                        action = "variant paused"
                alert = DeliverabilityAlert.objects.create(
                    tenant_id=rate.tenant_id, subject=rate.subject, key=rate.key, metric=metric, rate=pct,
                    threshold=threshold, sent=rate.sent, count=count, window_start=now - WINDOW, window_end=now,
                    action=action)
                _notify(alert)
                opened.append(alert)
            elif current is not None and pct <= threshold:
                DeliverabilityAlert.objects.filter(pk=current.pk).update(resolved_at=now, rate=pct, window_end=now)
    return opened


def version_rates(*, version_ids: list[int], since: datetime, now: datetime | None = None) -> dict[int, dict]:
    """Per template version since ``since``: messages accepted and sent, and the messages with a hard
    bounce, a complaint or an unsubscribe (each message counted once per metric). A staged rollout
    (templates_app.rollout, through COMMS_ROLLOUT_METRICS) compares the new version with the old."""
    now = now or timezone.now()
    messages = Message.objects.filter(template_version_id__in=version_ids, created_at__gte=since,
                                      created_at__lte=now)
    out = {v: {"accepted": 0, "sent": 0, "bounce": 0, "complaint": 0, "unsubscribe": 0} for v in version_ids}
    for row in messages.values("template_version_id").annotate(
            accepted=Count("id"), sent=Count("id", filter=Q(sent_at__isnull=False))):
        out[row["template_version_id"]].update(accepted=row["accepted"], sent=row["sent"])
    events = MessageEvent.objects.filter(message__template_version_id__in=version_ids, message__created_at__gte=since,
                                         message__created_at__lte=now)
    for row in events.values("message__template_version_id").annotate(
            bounce=Count("message_id", filter=HARD_BOUNCE, distinct=True),
            complaint=Count("message_id", filter=COMPLAINT, distinct=True),
            unsubscribe=Count("message_id", filter=Q(event_type=EventType.UNSUBSCRIBED), distinct=True)):
        out[row["message__template_version_id"]].update(
            bounce=row["bounce"], complaint=row["complaint"], unsubscribe=row["unsubscribe"])
    return out

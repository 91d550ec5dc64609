"""Synthetic probes (seed 001): on each beat tick, one probe per channel and provider to the sandbox
address configured for the channel (COMMS_PROBE_RECIPIENTS), timed to 'sent' and to 'delivered'.

A probe is an ordinary message through the whole pipeline (acceptance, screening, the engine, the
provider) pinned to one provider (``metadata.probe_provider``) and flagged ``metadata.probe``; it
belongs to no campaign, so campaign metrics never see it. 'Delivered' comes from the provider's
status webhook or callback (Twilio, ESPs), or for SMTP from the sink's Maildir (COMMS_PROBE_MAILDIR,
set by `make run`): a relay's 250 only says 'sent'. A sandbox address on the suppression list is
refused by the same gate every send passes: the probe is recorded as failed (COMMS_PROBE_SUPPRESSED)
and nothing is sent. A missed SLO raises an ops alert through the alerting path (COMMS_OPS_ALERT).
"""

from __future__ import annotations

import logging
import mailbox
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from comms import errors
from comms.enums import Priority, Status
from comms.models import Tenant
from comms.services import tenant_get_default
from delivery import routing
from delivery.deliverability.models_probes import Probe
from delivery.models import Message
from delivery.services.enqueue import SendSpec, message_enqueue

log = logging.getLogger(__name__)
State = Probe.State
FAILED_STATUSES = (Status.FAILED, Status.DEAD, Status.BOUNCED, Status.BLOCKED, Status.CANCELLED)
BODY = "comms synthetic probe: please ignore. It measures time to sent and delivered."


def _alert(probe: Probe, what: str) -> None:
    text = f"probe {probe.channel}/{probe.provider or '-'} {what}"
    log.warning("deliverability probe: %s", text)
    path = settings.COMMS_OPS_ALERT
    if path:
        import_string(path)(kind="probe.slo_missed", text=text,
                            data={"channel": probe.channel, "provider": probe.provider, "state": probe.state,
                                  "sent_seconds": probe.sent_seconds, "delivered_seconds": probe.delivered_seconds,
                                  "error_code": probe.error_code})


def probe_send(*, tenant: Tenant, channel: str, provider: str, address: str, now: datetime) -> Probe:
    """Enqueue one probe pinned to `provider`; a refused send (suppressed address…) is a failed probe."""
    spec = SendSpec(channel=channel, to=address, subject="comms probe", body=BODY, priority=Priority.P1,
                    category="transactional", metadata={"probe": True, "probe_provider": provider})
    try:
        message, _ = message_enqueue(tenant=tenant, spec=spec, now=now)
    except errors.CommsError as exc:
        suppressed = exc.code == errors.Suppressed.code
        probe = Probe.objects.create(
            tenant=tenant, channel=channel, provider=provider, address=address, created_at=now, finished_at=now,
            state=State.SUPPRESSED if suppressed else State.FAILED, slo_missed=True,
            error_code=errors.ProbeSuppressed.code if suppressed else exc.code, detail=exc.message)
        _alert(probe, f"not sent: {exc.message}")
        return probe
    return Probe.objects.create(tenant=tenant, channel=channel, provider=provider, address=address, message=message,
                                created_at=now)


def probes_send(*, now: datetime | None = None) -> list[Probe]:
    """One probe per configured channel and each provider serving it."""
    now = now or timezone.now()
    tenant = tenant_get_default()
    out = []
    for channel, address in (settings.COMMS_PROBE_RECIPIENTS or {}).items():
        for spec in routing.provider_specs(tenant_id=tenant.id, channel=channel, category="transactional"):
            out.append(probe_send(tenant=tenant, channel=channel, provider=spec.name, address=address, now=now))
    return out


def _maildir_delivered(message_ids: set[str]) -> dict[str, datetime]:
    """When the SMTP sink stored each probe (file mtime), matched on X-Comms-Message-Id."""
    path = settings.COMMS_PROBE_MAILDIR
    if not path or not message_ids or not Path(path).exists():
        return {}
    found: dict[str, datetime] = {}
    box = mailbox.Maildir(path, create=False)
    for key in box.keys():
        file = Path(path) / ("new" if (Path(path) / "new" / key).exists() else "cur") / key
        try:
            with open(file, "rb") as fh:
                headers = BytesHeaderParser().parse(fh)
        except OSError:
            continue
        comms_id = headers.get("X-Comms-Message-Id", "")
        if comms_id in message_ids:
            found[comms_id] = datetime.fromtimestamp(file.stat().st_mtime, tz=timezone.get_current_timezone())
    return found


def _observable(probe: Probe) -> bool:
    """Can this probe's delivery be seen? Not for SMTP without the sink's Maildir."""
    return probe.provider != "smtp" or bool(settings.COMMS_PROBE_MAILDIR)


def probes_collect(*, now: datetime | None = None) -> list[Probe]:
    """Advance the open probes from their messages; SLO misses alert once per probe."""
    now = now or timezone.now()
    slo_sent, slo_delivered = settings.COMMS_PROBE_SLO_SENT_SECONDS, settings.COMMS_PROBE_SLO_DELIVERED_SECONDS
    open_probes = list(Probe.objects.filter(state__in=[State.PENDING, State.SENT], finished_at__isnull=True)
                       .order_by("id"))
    messages = Message.objects.in_bulk([p.message_id for p in open_probes if p.message_id])
    sunk = _maildir_delivered({str(p.message_id) for p in open_probes if p.channel == "email" and p.message_id})
    changed = []
    for probe in open_probes:
        m = messages.get(probe.message_id)
        before = (probe.state, probe.slo_missed)
        if m is None:
            probe.state, probe.error_code, probe.finished_at = State.FAILED, "COMMS_NOT_FOUND", now
        else:
            if m.sent_at and probe.sent_seconds is None:
                probe.sent_seconds = max(0.0, (m.sent_at - probe.created_at).total_seconds())
                probe.state = State.SENT
            delivered_at = m.delivered_at or sunk.get(str(m.id))
            if delivered_at and probe.delivered_seconds is None:
                # The sink can store the mail before the worker writes 'sent' (it does so after the relay's
                # 250): delivered is never reported earlier than sent.
                took = (delivered_at - probe.created_at).total_seconds()
                probe.delivered_seconds = max(probe.sent_seconds or 0.0, took)
                probe.state, probe.finished_at = State.DELIVERED, now
            elif m.status in FAILED_STATUSES:
                probe.state, probe.finished_at = State.FAILED, now
                probe.error_code, probe.detail = m.failure_code or m.status, m.failure_reason[:500]
            elif (now - probe.created_at).total_seconds() > 2 * slo_delivered and _observable(probe):
                probe.state, probe.finished_at = State.TIMEOUT, now  # stop watching; the SLO was missed
        age = (now - probe.created_at).total_seconds()
        if probe.state == State.SENT and not _observable(probe):
            probe.finished_at = probe.finished_at or now  # a relay's 250 is all an SMTP send can tell
        sent_late = probe.sent_seconds > slo_sent if probe.sent_seconds is not None else age > slo_sent
        delivered_late = (probe.delivered_seconds > slo_delivered if probe.delivered_seconds is not None
                          else _observable(probe) and age > slo_delivered)
        missed = probe.state in (State.FAILED, State.TIMEOUT) or sent_late or delivered_late
        probe.slo_missed = probe.slo_missed or missed
        if (probe.state, probe.slo_missed) != before:
            probe.save()
            changed.append(probe)
            if probe.slo_missed and not before[1]:
                _alert(probe, f"missed its SLO (state {probe.state}, sent {probe.sent_seconds}, "
                              f"delivered {probe.delivered_seconds} s)")
    return changed


def probes_tick(*, now: datetime | None = None) -> dict[str, Any]:
    """The beat task: collect what the last probes did, then send the next round."""
    changed = probes_collect(now=now)
    sent = probes_send(now=now)
    return {"collected": len(changed), "sent": len(sent)}


def probe_series(*, since: timedelta = timedelta(days=1)) -> list[Probe]:
    """The probes of the last `since`, oldest first (the console's chart and table)."""
    return list(Probe.objects.filter(created_at__gte=timezone.now() - since).order_by("created_at"))

"""Campaigns: an audience, a template, channels, a schedule and a throttle; fanned out with COPY.

States: draft → scheduled → running ⇄ paused → completed, or cancelled from any but completed.
The fan-out writes delivery rows in chunks through ``message_bulk_enqueue`` (one COPY per chunk,
one MessageBatch per chunk and channel). Pause, resume and cancel lock the campaign row and
change every unsent row of its batches in the same transaction; the fan-out holds a share lock on
the campaign while it writes a chunk, so a chunk is either written before a pause/cancel (and
then held/cancelled by it) or written after it seeing the new state. No row becomes claimable
after cancel returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from comms import errors
from comms.campaign_models import Campaign, Segment
from comms.models import Recipient
from comms.campaign_fanout import campaign_pump, dispatch_cleanup, dispatch_fanout, fanned_out
from comms.segments import csv_parse, segment_queryset
from delivery.services import batches_cancel, batches_hold, batches_progress
from templates_app import services as templates

log = logging.getLogger(__name__)
State = Campaign.State
UTC = dt_timezone.utc


# --- creation -------------------------------------------------------------------------------------

def _audience(campaign: Campaign, audience: dict) -> None:
    kinds = set(audience) & {"recipients", "segment", "csv"}
    if len(kinds) != 1:
        raise errors.AudienceInvalid("audience is one of {recipients: [...]}, {segment: name}, {csv: text}.")
    kind = kinds.pop()
    if kind == "recipients":
        ids = audience["recipients"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise errors.AudienceInvalid("audience.recipients is a list of recipient ids.")
        campaign.audience_kind, campaign.audience_list = Campaign.AudienceKind.LIST, list(dict.fromkeys(ids))
    elif kind == "segment":
        segment = Segment.objects.filter(tenant=campaign.tenant, name=audience["segment"]).first()
        if segment is None:
            raise errors.AudienceInvalid(f"No segment '{audience['segment']}'.")
        campaign.audience_kind, campaign.segment = Campaign.AudienceKind.SEGMENT, segment
    else:
        if len(campaign.channels) > 1 and "\nto" in "\n" + audience["csv"].split("\n", 1)[0].replace(",", "\n"):
            raise errors.CsvInvalid("A CSV with a 'to' column serves one channel; give one channel.")
        accepted, refused = csv_parse(tenant=campaign.tenant, text=audience["csv"], channel=campaign.channels[0])
        campaign.audience_kind, campaign.audience_list = Campaign.AudienceKind.CSV, accepted
        campaign.audience_errors = refused[:1000]
        if not accepted:
            raise errors.AudienceEmpty("No usable row in the CSV.", details={"refused": refused[:100]})


def _schedule(campaign: Campaign, schedule: dict, now: datetime) -> None:
    if not schedule:
        campaign.schedule_kind = Campaign.ScheduleKind.NOW
        return
    if "at" in schedule:
        at = datetime.fromisoformat(str(schedule["at"]).replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise errors.ValidationFailed("schedule.at needs a UTC offset.", details={"field": "schedule.at"})
        if at < now - timedelta(seconds=5):
            raise errors.ScheduleInPast(details={"scheduled_for": at.isoformat()})
        campaign.schedule_kind, campaign.send_at = Campaign.ScheduleKind.AT, at
    elif "local_time" in schedule:
        try:
            campaign.local_time = time.fromisoformat(schedule["local_time"])
            campaign.local_date = date.fromisoformat(schedule["local_date"]) if schedule.get("local_date") else None
        except (TypeError, ValueError):
            raise errors.ValidationFailed("local_time is HH:MM and local_date YYYY-MM-DD.") from None
        campaign.schedule_kind = Campaign.ScheduleKind.LOCAL
    else:
        raise errors.ValidationFailed("schedule is {} (now), {at: iso} or {local_time, local_date}.")


def campaign_create(*, tenant, data: dict, actor=None, now: datetime | None = None) -> Campaign:
    """A draft campaign; the audience is checked (CSV rows refused are reported) but not expanded."""
    now = now or timezone.now()
    version = templates.active_version(tenant=tenant, template_key=data["template"])
    missing = [c for c in data["channels"] if c not in version.template.channels]
    if missing:
        raise errors.TemplateChannel(f"Template '{data['template']}' has no {', '.join(missing)} content.")
    campaign = Campaign(tenant=tenant, name=data["name"], channels=list(dict.fromkeys(data["channels"])),
                        template_key=data["template"], variables=data.get("variables") or {},
                        category=data.get("category", "marketing"), priority=int(data.get("priority", 3)),
                        throttle_per_minute=data.get("throttle_per_minute"), created_at=now,
                        created_by=actor if getattr(actor, "_meta", None) else None)
    _audience(campaign, data["audience"])
    if campaign.audience_kind != Campaign.AudienceKind.CSV:  # CSV rows add variables; checked per row
        templates.check_variables(version, campaign.variables)
    _schedule(campaign, data.get("schedule") or {}, now)
    campaign.save()
    return campaign


def audience_queryset(campaign: Campaign):
    if campaign.audience_kind == Campaign.AudienceKind.SEGMENT:
        return segment_queryset(tenant=campaign.tenant, spec=campaign.segment.filter)
    ids = campaign.audience_list
    return Recipient.objects.filter(tenant=campaign.tenant, external_id__in=ids)


def audience_size(campaign: Campaign) -> int:
    if campaign.audience_kind == Campaign.AudienceKind.CSV:
        return len(campaign.audience_list)
    return audience_queryset(campaign).count()


# --- state changes ----------------------------------------------------------------------------------

def _locked(tenant, campaign_id) -> Campaign:
    campaign = Campaign.objects.select_for_update().filter(tenant=tenant, pk=campaign_id).first()
    if campaign is None:
        raise errors.NotFound("No such campaign.")
    return campaign


def _refuse(campaign: Campaign, action: str) -> None:
    raise errors.CampaignState(f"A {campaign.state} campaign cannot be {action}.",
                               details={"state": campaign.state, "action": action})


@transaction.atomic
def campaign_schedule(*, tenant, campaign_id, now: datetime | None = None) -> Campaign:
    """draft → scheduled; an empty audience is refused. The beat tick (or this call's commit) starts it."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state != State.DRAFT:
        _refuse(campaign, "scheduled")
    size = audience_size(campaign)
    if size == 0:
        raise errors.AudienceEmpty("The campaign's audience has no recipients.", details={"campaign": str(campaign.id)})
    campaign.audience_size = size
    campaign.state = State.SCHEDULED
    campaign.start_at = campaign.send_at if campaign.schedule_kind == Campaign.ScheduleKind.AT else now
    campaign.save(update_fields=["audience_size", "state", "start_at"])
    if campaign.start_at <= now:
        transaction.on_commit(lambda: campaigns_tick(now=now))
    return campaign


@dataclass
class TickStats:
    started: int = 0
    released: int = 0
    completed: int = 0


def campaigns_tick(*, now: datetime | None = None) -> TickStats:
    """Beat: start due scheduled campaigns; let each running one release its next chunks."""
    now = now or timezone.now()
    stats = TickStats()
    with transaction.atomic():
        for campaign in Campaign.objects.select_for_update(skip_locked=True).filter(
                state=State.SCHEDULED, start_at__lte=now)[:50]:
            campaign.state, campaign.started_at = State.RUNNING, now
            campaign.save(update_fields=["state", "started_at"])
            dispatch_fanout(campaign)
            stats.started += 1
    for campaign_id in Campaign.objects.filter(state=State.RUNNING).values_list("pk", flat=True)[:200]:
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).first()
            if campaign is None:
                continue
            stats.released += campaign_pump(campaign, now=now)
            stats.completed += campaign.state == State.COMPLETED
    return stats


@transaction.atomic
def campaign_pause(*, tenant, campaign_id, now: datetime | None = None) -> Campaign:
    """Hold every released row not yet with a worker; nothing else of the campaign is claimable anyway."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state not in (State.SCHEDULED, State.RUNNING):
        _refuse(campaign, "paused")
    open_batches = campaign.batches.filter(released_at__isnull=False, drained_at__isnull=True)
    batches_hold(batch_ids=open_batches.values_list("batch_id", flat=True), now=now)
    open_batches.update(released_at=None)  # the pump releases them again on resume
    campaign.state, campaign.paused_at = State.PAUSED, now
    campaign.save(update_fields=["state", "paused_at"])
    return campaign


@transaction.atomic
def campaign_resume(*, tenant, campaign_id, now: datetime | None = None) -> Campaign:
    """Throttled chunks keep their spacing, shifted by the pause; local-time chunks keep their time."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state != State.PAUSED:
        _refuse(campaign, "resumed")
    if campaign.throttle_per_minute and campaign.schedule_kind != Campaign.ScheduleKind.LOCAL and campaign.paused_at:
        campaign.batches.filter(released_at__isnull=True).update(send_at=F("send_at") + (now - campaign.paused_at))
    campaign.state = State.RUNNING if campaign.started_at else State.SCHEDULED
    if campaign.state == State.SCHEDULED and campaign.start_at and campaign.start_at < now:
        campaign.start_at = now
    campaign.paused_at = None
    campaign.save(update_fields=["state", "paused_at", "start_at"])
    campaign_pump(campaign, now=now)
    return campaign


@transaction.atomic
def campaign_cancel(*, tenant, campaign_id, now: datetime | None = None) -> tuple[Campaign, dict]:
    """Cancel every released row not yet with a worker, in this transaction; rows already with a
    worker (in flight) finish. Held rows can never be sent; a cleanup task marks them cancelled."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state in (State.COMPLETED, State.CANCELLED):
        _refuse(campaign, "cancelled")
    open_batches = campaign.batches.filter(released_at__isnull=False, drained_at__isnull=True)
    cancelled, in_flight = batches_cancel(batch_ids=open_batches.values_list("batch_id", flat=True), now=now,
                                          reason=f"campaign {campaign.id} cancelled")
    held = campaign.batches.filter(released_at__isnull=True).aggregate(n=Sum("size"))["n"] or 0
    campaign.state, campaign.finished_at = State.CANCELLED, now
    campaign.save(update_fields=["state", "finished_at"])
    if held:
        dispatch_cleanup(campaign)
    return campaign, {"cancelled": cancelled, "in_flight": in_flight, "held_cancelled_in_background": held}


def campaign_progress(campaign: Campaign) -> dict:
    progress = batches_progress(batch_ids=campaign.batches.values_list("batch_id", flat=True))
    return {**progress.summary(), "audience": campaign.audience_size, "fanned_out": fanned_out(campaign.pk),
            "fanout_done": campaign.fanout_done}



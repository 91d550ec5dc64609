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
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from typing import Any, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from comms import errors
from comms.campaign_models import Campaign, CampaignBatch, Segment
from comms.models import Recipient
from comms.segments import csv_parse, iter_chunks, segment_queryset
from delivery.services import (
    HOLD_UNTIL, SendSpec, batches_cancel, batches_hold, batches_progress, batches_release, message_bulk_enqueue,
)
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


@transaction.atomic
def campaign_pause(*, tenant, campaign_id, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state not in (State.SCHEDULED, State.RUNNING):
        _refuse(campaign, "paused")
    batches_hold(batch_ids=campaign.batches.values_list("batch_id", flat=True), now=now)
    campaign.state, campaign.paused_at = State.PAUSED, now
    campaign.save(update_fields=["state", "paused_at"])
    return campaign


@transaction.atomic
def campaign_resume(*, tenant, campaign_id, now: datetime | None = None) -> Campaign:
    """Held rows keep their throttle spacing from now on, and never go out before their planned time."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state != State.PAUSED:
        _refuse(campaign, "resumed")
    batches = list(campaign.batches.order_by("offset_seconds"))
    progress = campaign.paused_at or now
    shift = now - progress
    due = {b.batch_id: max((b.send_at or now) + shift, now) if campaign.throttle_per_minute else (b.send_at or now)
           for b in batches}
    batches_release(due=due, now=now)
    campaign.state = State.RUNNING if campaign.started_at else State.SCHEDULED
    if campaign.state == State.SCHEDULED and campaign.start_at and campaign.start_at < now:
        campaign.start_at = now
    campaign.paused_at = None
    campaign.save(update_fields=["state", "paused_at", "start_at"])
    return campaign


@transaction.atomic
def campaign_cancel(*, tenant, campaign_id, now: datetime | None = None) -> tuple[Campaign, dict]:
    """Cancel every unsent row in this transaction; rows already with a worker (in flight) finish."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state in (State.COMPLETED, State.CANCELLED):
        _refuse(campaign, "cancelled")
    cancelled, in_flight = batches_cancel(batch_ids=campaign.batches.values_list("batch_id", flat=True), now=now,
                                          reason=f"campaign {campaign.id} cancelled")
    campaign.state, campaign.finished_at = State.CANCELLED, now
    campaign.save(update_fields=["state", "finished_at"])
    return campaign, {"cancelled": cancelled, "in_flight": in_flight}


def campaign_progress(campaign: Campaign) -> dict:
    progress = batches_progress(batch_ids=campaign.batches.values_list("batch_id", flat=True))
    return {**progress.summary(), "audience": campaign.audience_size, "fanned_out": campaign.queued_count,
            "fanout_done": campaign.fanout_done}


# --- fan-out ------------------------------------------------------------------------------------------

def _dispatch_fanout(campaign: Campaign) -> None:
    from comms.tasks import campaign_fanout as task

    campaign_id = str(campaign.id)
    transaction.on_commit(lambda: task.apply_async(args=[campaign_id], queue="p3"))


def campaigns_tick(*, now: datetime | None = None) -> "TickStats":
    """Beat: start due scheduled campaigns; mark running ones complete when nothing is left to send."""
    now = now or timezone.now()
    stats = TickStats()
    with transaction.atomic():
        for campaign in Campaign.objects.select_for_update(skip_locked=True).filter(
                state=State.SCHEDULED, start_at__lte=now)[:50]:
            campaign.state, campaign.started_at = State.RUNNING, now
            campaign.save(update_fields=["state", "started_at"])
            _dispatch_fanout(campaign)
            stats.started += 1
    for campaign in Campaign.objects.filter(state=State.RUNNING, fanout_done=True)[:200]:
        if batches_progress(batch_ids=campaign.batches.values_list("batch_id", flat=True)).unfinished == 0:
            updated = Campaign.objects.filter(pk=campaign.pk, state=State.RUNNING).update(
                state=State.COMPLETED, finished_at=now)
            stats.completed += updated
    return stats


@dataclass
class TickStats:
    started: int = 0
    completed: int = 0


@dataclass
class FanoutStats:
    chunks: int = 0
    rows: int = 0
    skipped: int = 0
    stopped: str = ""


def _local_due(campaign: Campaign, tz: str, now: datetime) -> datetime:
    """The campaign's wall-clock time in `tz` on its day (today there when no day is given)."""
    try:
        zone = zoneinfo.ZoneInfo(tz or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    day = campaign.local_date or now.astimezone(zone).date()
    return datetime.combine(day, campaign.local_time, tzinfo=zone).astimezone(UTC)


def _groups(campaign: Campaign, chunk: int) -> Iterator[tuple[str, list[dict]]]:
    """(timezone or '', rows) chunks; grouped by timezone only for local-time campaigns."""
    shared = campaign.variables
    if campaign.audience_kind == Campaign.AudienceKind.CSV:
        rows = campaign.audience_list
        for start in range(0, len(rows), chunk):
            yield "", [{**r, "variables": {**shared, **r.get("variables", {})}} if shared or r.get("variables")
                       else r for r in rows[start:start + chunk]]
        return
    queryset = audience_queryset(campaign)
    zones = [""]
    if campaign.schedule_kind == Campaign.ScheduleKind.LOCAL:
        zones = sorted(set(queryset.values_list("timezone", flat=True).distinct()))
    for zone in zones:
        qs = queryset.filter(timezone=zone) if zone else queryset
        for rows in iter_chunks(qs, chunk):
            yield zone, [{"recipient_id": ext, "variables": shared} if shared else {"recipient_id": ext}
                         for _, ext, _ in rows]


def campaign_fanout(*, campaign_id, now_fn=timezone.now) -> FanoutStats:
    """Write the campaign's delivery rows chunk by chunk; resumable (chunks already written are skipped)."""
    stats = FanoutStats()
    campaign = Campaign.objects.select_related("tenant", "segment").get(pk=campaign_id)
    throttle = campaign.throttle_per_minute
    chunk = min(settings.COMMS_CAMPAIGN_CHUNK, settings.COMMS_BULK_MAX_RECIPIENTS, throttle or 10**9)
    done = {(b.seq, b.channel) for b in campaign.batches.all()}
    start = campaign.start_at or now_fn()
    zone_sent: dict[str, int] = {}
    for seq, (zone, rows) in enumerate(_groups(campaign, chunk)):
        now = now_fn()
        base = _local_due(campaign, zone, now) if campaign.schedule_kind == Campaign.ScheduleKind.LOCAL else start
        offset = int(zone_sent.get(zone, 0) * 60 / throttle) if throttle else 0
        zone_sent[zone] = zone_sent.get(zone, 0) + len(rows)
        send_at = base + timedelta(seconds=offset)
        for channel in campaign.channels:
            if (seq, channel) in done:
                stats.skipped += 1
                continue
            with transaction.atomic():
                # FOR NO KEY UPDATE conflicts with pause/cancel's FOR UPDATE: they wait for this chunk.
                state = (Campaign.objects.select_for_update(no_key=True).filter(pk=campaign.pk)
                         .values_list("state", flat=True)[0])
                if state == State.CANCELLED:
                    stats.stopped = "cancelled"
                    return stats
                held = state == State.PAUSED
                scheduled_for = HOLD_UNTIL if held else (send_at if send_at > now + timedelta(seconds=1) else None)
                spec = SendSpec(channel=channel, template_key=campaign.template_key, category=campaign.category,
                                priority=campaign.priority, scheduled_for=scheduled_for,
                                metadata={"campaign": str(campaign.id)})
                try:
                    result = message_bulk_enqueue(tenant=campaign.tenant, spec=spec, recipients=rows,
                                                  skip_invalid=True, now=now,
                                                  idempotency_key=f"campaign:{campaign.id}:{channel}:{seq}")
                except errors.CommsError as exc:  # e.g. nobody in this chunk reachable on this channel
                    log.warning("campaign %s chunk %s/%s not written: %s", campaign.id, seq, channel, exc.message)
                    stats.skipped += 1
                    continue
                if not result.created:  # written by an earlier run of this fan-out
                    stats.skipped += 1
                    continue
                CampaignBatch.objects.create(campaign=campaign, seq=seq, channel=channel, batch_id=result.batch.id,
                                             offset_seconds=offset, send_at=send_at, size=result.batch.accepted)
                Campaign.objects.filter(pk=campaign.pk).update(queued_count=F("queued_count") + result.batch.accepted)
            stats.chunks += 1
            stats.rows += result.batch.accepted
    Campaign.objects.filter(pk=campaign.pk).update(fanout_done=True)
    return stats


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
from comms.audit import audit_record
from comms.campaigns.abtest import abtest_config_clean, campaigns_abtest_tick
from comms.campaigns.fanout import campaign_pump, fanned_out
from comms.campaigns.models import Campaign
from comms.campaigns.tasks import dispatch_cleanup, dispatch_fanout
from comms.campaigns.audience import (  # noqa: F401 (audience_queryset re-exported)
    audience_queryset, audience_set, audience_size, channels_check,
)
from delivery.services import SendSpec, batches_cancel, batches_hold, batches_progress
from delivery.services.enqueue import check_sendable
from tracking.send_time import within_hours_clean
from templates_app import services as templates

log = logging.getLogger(__name__)
State = Campaign.State
UTC = dt_timezone.utc


# --- creation and draft edits ---------------------------------------------------------------------

SCHEDULE_SHAPES = "schedule is {} (now), {at: iso}, {local_time, local_date} or {best_within_hours[, at]}."


def _schedule(campaign: Campaign, schedule: dict, now: datetime) -> None:
    campaign.send_at = campaign.local_date = campaign.local_time = campaign.best_within_hours = None
    if not schedule:
        campaign.schedule_kind = Campaign.ScheduleKind.NOW
        return
    if not isinstance(schedule, dict):
        raise errors.ValidationFailed(SCHEDULE_SHAPES)
    best = schedule.get("kind", "best" if "best_within_hours" in schedule else None) == Campaign.ScheduleKind.BEST
    if "kind" in schedule and schedule["kind"] not in Campaign.ScheduleKind.values:
        raise errors.ValidationFailed(SCHEDULE_SHAPES, details={"field": "schedule.kind",
                                                                "allowed": Campaign.ScheduleKind.values})
    if best:  # "each recipient's best hour within N hours" from the start (now, or `at`)
        hours = within_hours_clean(schedule.get("best_within_hours"), path="schedule.best_within_hours")
        rest = {k: v for k, v in schedule.items() if k not in ("kind", "best_within_hours") and v is not None}
        if set(rest) - {"at"}:
            raise errors.ValidationFailed(SCHEDULE_SHAPES, details={"fields": sorted(set(rest) - {"at"})})
        _schedule(campaign, rest, now)
        campaign.schedule_kind, campaign.best_within_hours = Campaign.ScheduleKind.BEST, hours
        return
    if "kind" in schedule:  # the shape the API returns: the other keys say the rest
        _schedule(campaign, {k: v for k, v in schedule.items() if k != "kind" and v is not None}, now)
        if campaign.schedule_kind != schedule["kind"]:
            raise errors.ValidationFailed(f"schedule.kind '{schedule['kind']}' does not match its other fields.",
                                          details={"field": "schedule.kind"})
        return
    if "at" in schedule:
        try:
            at = schedule["at"] if isinstance(schedule["at"], datetime) else datetime.fromisoformat(
                str(schedule["at"]).replace("Z", "+00:00"))
        except ValueError:
            raise errors.ValidationFailed("schedule.at is an ISO 8601 time.", details={"field": "schedule.at"}) from None
        if at.tzinfo is None:
            raise errors.ValidationFailed("schedule.at needs a UTC offset.", details={"field": "schedule.at"})
        if at < now - timedelta(seconds=5):
            raise errors.ScheduleInPast(f"schedule.at {at.isoformat()} lies in the past.",
                                        details={"scheduled_for": at.isoformat()})
        campaign.schedule_kind, campaign.send_at = Campaign.ScheduleKind.AT, at
    elif "local_time" in schedule:
        try:
            campaign.local_time = time.fromisoformat(str(schedule["local_time"]))
            campaign.local_date = date.fromisoformat(str(schedule["local_date"])) if schedule.get("local_date") \
                else None
        except (TypeError, ValueError):
            raise errors.ValidationFailed("local_time is HH:MM and local_date YYYY-MM-DD.") from None
        if campaign.local_date is not None and campaign.local_date < (now - timedelta(days=1)).date():
            raise errors.ScheduleInPast(f"local_date {campaign.local_date.isoformat()} lies in the past.",
                                        details={"local_date": campaign.local_date.isoformat()})
        campaign.schedule_kind = Campaign.ScheduleKind.LOCAL
    else:
        raise errors.ValidationFailed(SCHEDULE_SHAPES)


def _fill(campaign: Campaign, data: dict, now: datetime) -> Campaign:
    """Every check a campaign passes before it is stored: template and its channels, variables,
    audience (valid, reachable on the channels, not empty) and schedule."""
    channels = list(dict.fromkeys(data["channels"]))
    channels_check(channels)
    version = templates.active_version(tenant=campaign.tenant, template_key=data["template"])
    missing = [c for c in channels if c not in version.template.channels]
    if missing:
        raise errors.TemplateChannel(f"Template '{data['template']}' has no {', '.join(missing)} content.")
    campaign.name, campaign.channels, campaign.template_key = data["name"], channels, data["template"]
    campaign.variables = data.get("variables") or {}
    campaign.category, campaign.priority = data.get("category", "marketing"), int(data.get("priority", 3))
    campaign.throttle_per_minute = data.get("throttle_per_minute")
    audience_set(campaign, data["audience"])
    if campaign.audience_kind != Campaign.AudienceKind.CSV:  # CSV rows add variables; checked per row
        templates.check_variables(version, campaign.variables)
    _schedule(campaign, data.get("schedule") or {}, now)
    campaign.ab_test = (abtest_config_clean(data["ab_test"], variants=[
        v.get("key") for v in (version.experiment or {}).get("variants", []) if v.get("key")])
        if data.get("ab_test") else {})
    return campaign


def campaign_validate(*, tenant, data: dict, now: datetime | None = None) -> Campaign:
    """The campaign `data` would create, checked but unsaved (the admin form's clean uses it)."""
    return _fill(Campaign(tenant=tenant), data, now or timezone.now())


@transaction.atomic
def campaign_create(*, tenant, data: dict, actor=None, now: datetime | None = None, ip: str | None = None
                    ) -> Campaign:
    """A draft campaign; the audience is checked (CSV rows refused are reported) but not expanded."""
    now = now or timezone.now()
    campaign = _fill(Campaign(tenant=tenant, created_at=now, created_by=actor if _is_user(actor) else None),
                     data, now)
    campaign.save()
    audit(actor, "campaign.create", campaign, {"channels": campaign.channels, "audience": campaign.audience_kind,
                                               "size": campaign.audience_size}, ip)
    return campaign


@transaction.atomic
def campaign_update(*, tenant, campaign_id, data: dict, actor=None, now: datetime | None = None,
                    ip: str | None = None) -> Campaign:
    """Edit a draft with the same checks as create; anything past draft changes only through actions."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state != State.DRAFT:
        _refuse(campaign, "edited")
    _fill(campaign, data, now)
    campaign.save()
    audit(actor, "campaign.update", campaign, {"channels": campaign.channels, "audience": campaign.audience_kind,
                                               "size": campaign.audience_size}, ip)
    return campaign


def _is_user(actor) -> bool:
    return bool(getattr(actor, "_meta", None)) and actor._meta.label_lower == "auth.user"


def audit(actor, action: str, target, diff: dict | None = None, ip: str | None = None) -> None:
    """One AuditEntry per campaign, segment or schedule change (actor: a user or an API key)."""
    audit_record(actor=actor, action=action, target=target, diff=diff or {}, ip=ip, tenant=target.tenant)


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
def campaign_schedule(*, tenant, campaign_id, now: datetime | None = None, actor=None,
                      ip: str | None = None) -> Campaign:
    """draft → scheduled; an empty audience is refused. The beat tick (or this call's commit) starts it."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state != State.DRAFT:
        _refuse(campaign, "scheduled")
    if campaign.send_at is not None and campaign.send_at < now - timedelta(minutes=5):
        raise errors.ScheduleInPast("The campaign's send time has passed; edit the draft's schedule.",
                                    details={"scheduled_for": campaign.send_at.isoformat()})
    for channel in campaign.channels:  # refused now, not chunk by chunk in the background fan-out
        check_sendable(tenant=campaign.tenant, now=now, spec=SendSpec(
            channel=channel, template_key=campaign.template_key, category=campaign.category,
            priority=campaign.priority))
    size = audience_size(campaign)
    if size == 0:
        raise errors.AudienceEmpty("The campaign's audience has no recipients.", details={"campaign": str(campaign.id)})
    campaign.audience_size = size
    campaign.state = State.SCHEDULED
    campaign.start_at = campaign.send_at or now  # 'at', or 'best' from a given start
    campaign.save(update_fields=["audience_size", "state", "start_at"])
    audit(actor, "campaign.schedule", campaign, {"audience_size": size, "start_at": campaign.start_at.isoformat()}, ip)
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
    campaigns_abtest_tick(now=now)  # A/B campaigns whose wait is over: the winner's rest gets its slots
    for campaign_id in Campaign.objects.filter(state=State.RUNNING).values_list("pk", flat=True)[:200]:
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).first()
            if campaign is None:
                continue
            stats.released += campaign_pump(campaign, now=now)
            stats.completed += campaign.state == State.COMPLETED
    return stats


@transaction.atomic
def campaign_pause(*, tenant, campaign_id, now: datetime | None = None, actor=None,
                   ip: str | None = None) -> Campaign:
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
    audit(actor, "campaign.pause", campaign, {}, ip)
    return campaign


@transaction.atomic
def campaign_resume(*, tenant, campaign_id, now: datetime | None = None, actor=None,
                    ip: str | None = None) -> Campaign:
    """Throttled chunks keep their spacing, shifted by the pause; local-time and best-hour chunks keep
    their time (a chunk whose hour passed during the pause goes at once)."""
    now = now or timezone.now()
    campaign = _locked(tenant, campaign_id)
    if campaign.state != State.PAUSED:
        _refuse(campaign, "resumed")
    if (campaign.throttle_per_minute and campaign.paused_at
            and campaign.schedule_kind not in (Campaign.ScheduleKind.LOCAL, Campaign.ScheduleKind.BEST)):
        campaign.batches.filter(released_at__isnull=True).update(send_at=F("send_at") + (now - campaign.paused_at))
    campaign.state = State.RUNNING if campaign.started_at else State.SCHEDULED
    if campaign.state == State.SCHEDULED and campaign.start_at and campaign.start_at < now:
        campaign.start_at = now
    campaign.paused_at = None
    campaign.save(update_fields=["state", "paused_at", "start_at"])
    audit(actor, "campaign.resume", campaign, {"state": campaign.state}, ip)
    campaign_pump(campaign, now=now)
    return campaign


@transaction.atomic
def campaign_cancel(*, tenant, campaign_id, now: datetime | None = None, actor=None,
                    ip: str | None = None) -> tuple[Campaign, dict]:
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
    audit(actor, "campaign.cancel", campaign, {"cancelled": cancelled, "in_flight": in_flight, "held": held}, ip)
    return campaign, {"cancelled": cancelled, "in_flight": in_flight, "held_cancelled_in_background": held}


def campaign_progress(campaign: Campaign) -> dict:
    progress = batches_progress(batch_ids=campaign.batches.values_list("batch_id", flat=True))
    return {**progress.summary(), "audience": campaign.audience_size, "fanned_out": fanned_out(campaign.pk),
            "fanout_done": campaign.fanout_done}



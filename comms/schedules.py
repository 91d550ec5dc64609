"""Stored schedules: one-time or recurring (cron in a timezone) posts of an event through the router.

We use croniter with our own beat tick rather than django-celery-beat: a schedule here is data of a
tenant (an event to post), not a Celery task, and the tick claims due rows with
``FOR UPDATE SKIP LOCKED`` so two beats never fire one occurrence twice; the occurrence's
cause_ref (``schedule:<id>:<time>``) makes even a repeated firing produce its messages once.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from comms import errors
from comms.campaign_models import Schedule
from comms.enums import Priority

log = logging.getLogger(__name__)


def cron_validate(expression: str) -> str:
    expression = " ".join((expression or "").split())
    if len(expression.split(" ")) != 5 or not croniter.is_valid(expression):
        raise errors.CronInvalid(f"'{expression}' is not a five-field cron expression "
                                 "(minute hour day-of-month month day-of-week).", details={"cron": expression})
    return expression


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise errors.ValidationFailed(f"Unknown time zone '{name}'.", details={"field": "timezone"}) from None


def cron_next(expression: str, tz: str, after: datetime) -> datetime:
    """The next occurrence after `after`, reading the expression as wall-clock time in `tz`."""
    local = after.astimezone(_zone(tz))
    return croniter(expression, local).get_next(datetime).astimezone(zoneinfo.ZoneInfo("UTC"))


def _event_check(event: dict) -> dict:
    from comms.events import EventInput, _validate

    if not isinstance(event, dict) or not event.get("name"):
        raise errors.ValidationFailed("event.name is required.", details={"field": "event.name"})
    allowed = {"name", "recipients", "audience", "actor", "category", "priority", "payload"}
    unknown = set(event) - allowed
    if unknown:
        raise errors.UnknownField(f"event has unknown fields: {', '.join(sorted(unknown))}.")
    if not event.get("recipients") and not event.get("audience"):
        raise errors.AudienceEmpty("The scheduled event has no recipients or audience.")
    _validate(EventInput(name=event["name"], recipients=tuple(event.get("recipients") or ()),
                         audience=event.get("audience") or {}))
    return event


def schedule_create(*, tenant, name: str, event: dict, cron: str = "", run_at: datetime | None = None,
                    tz: str = "UTC", now: datetime | None = None) -> Schedule:
    """A cron schedule (recurring) or a one-time one (run_at); exactly one of them."""
    now = now or timezone.now()
    _zone(tz)
    _event_check(event)
    if bool(cron) == bool(run_at):
        raise errors.ValidationFailed("Give either cron or run_at.", details={"field": "cron"})
    if cron:
        cron = cron_validate(cron)
        kind, next_run = Schedule.Kind.CRON, cron_next(cron, tz, now)
    else:
        if run_at < now:
            raise errors.ScheduleInPast(details={"run_at": run_at.isoformat(), "now": now.isoformat()})
        kind, next_run = Schedule.Kind.ONCE, run_at
    return Schedule.objects.create(tenant=tenant, name=name or event["name"], kind=kind, cron=cron, timezone=tz,
                                   run_at=run_at, event=event, next_run_at=next_run, created_at=now)


@transaction.atomic
def schedule_cancel(*, tenant, schedule_id: int, now: datetime | None = None) -> Schedule:
    schedule = Schedule.objects.select_for_update().filter(tenant=tenant, pk=schedule_id).first()
    if schedule is None:
        raise errors.NotFound("No such schedule.")
    if schedule.cancelled_at is not None:
        raise errors.ScheduleState("The schedule is already cancelled.")
    schedule.cancelled_at, schedule.next_run_at = now or timezone.now(), None
    schedule.save(update_fields=["cancelled_at", "next_run_at"])
    return schedule


@dataclass
class ScheduleStats:
    fired: int = 0
    failed: int = 0


def schedules_run(*, now: datetime | None = None, limit: int = 200) -> ScheduleStats:
    """Fire due schedules once each; a recurring one moves to its next occurrence after now
    (occurrences missed while beat was down are not replayed in a burst)."""
    from comms.events import EventInput, event_ingest

    now = now or timezone.now()
    stats = ScheduleStats()
    with transaction.atomic():
        due = list(Schedule.objects.select_for_update(skip_locked=True, of=("self",)).select_related("tenant")
                   .filter(cancelled_at__isnull=True, next_run_at__lte=now).order_by("next_run_at")[:limit])
        for schedule in due:
            occurrence = schedule.next_run_at
            body = schedule.event
            try:
                with transaction.atomic():
                    event_ingest(tenant=schedule.tenant, now=now, event=EventInput(
                        name=body["name"], recipients=tuple(body.get("recipients") or ()),
                        audience=body.get("audience") or {}, actor=body.get("actor") or {},
                        cause_ref=f"schedule:{schedule.pk}:{occurrence.isoformat()}",
                        category=body.get("category", "transactional"),
                        priority=int(Priority.parse(body.get("priority", 2))), payload=body.get("payload") or {}))
                schedule.last_error = ""
                stats.fired += 1
            except errors.CommsError as exc:
                schedule.last_error = f"{exc.code}: {exc.message}"
                stats.failed += 1
            schedule.last_run_at, schedule.run_count = now, schedule.run_count + 1
            schedule.next_run_at = (cron_next(schedule.cron, schedule.timezone, max(now, occurrence))
                                    if schedule.kind == Schedule.Kind.CRON else None)
            schedule.save(update_fields=["last_run_at", "run_count", "next_run_at", "last_error"])
    return stats

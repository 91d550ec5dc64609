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
from comms.audit import audit_record
from comms.router.events import EventInput, event_ingest, event_validate
from comms.router.models import Schedule
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
    if not isinstance(event, dict) or not event.get("name"):
        raise errors.ValidationFailed("event.name is required.", details={"field": "event.name"})
    allowed = {"name", "recipients", "audience", "actor", "category", "priority", "payload"}
    unknown = set(event) - allowed
    if unknown:
        raise errors.UnknownField(f"event has unknown fields: {', '.join(sorted(unknown))}.")
    if not event.get("recipients") and not event.get("audience"):
        raise errors.AudienceEmpty("The scheduled event has no recipients or audience.")
    event_validate(EventInput(name=event["name"], recipients=tuple(event.get("recipients") or ()),
                              audience=event.get("audience") or {}))
    return event


def _audit(actor, action: str, schedule: Schedule, diff: dict, ip: str | None) -> None:
    audit_record(actor=actor, action=action, target=schedule, diff=diff, ip=ip, tenant=schedule.tenant)


def _timing(schedule: Schedule, *, cron: str, run_at: datetime | None, tz: str, now: datetime) -> None:
    """Set kind, cron/run_at, timezone and the next run from exactly one of cron and run_at."""
    _zone(tz)
    if bool(cron) == bool(run_at):
        raise errors.ValidationFailed("Give either cron or run_at.", details={"field": "cron"})
    if cron:
        cron = cron_validate(cron)
        schedule.kind, schedule.cron, schedule.run_at = Schedule.Kind.CRON, cron, None
        schedule.next_run_at = cron_next(cron, tz, now)
    else:
        if run_at < now:
            raise errors.ScheduleInPast(details={"run_at": run_at.isoformat(), "now": now.isoformat()})
        schedule.kind, schedule.cron, schedule.run_at, schedule.next_run_at = Schedule.Kind.ONCE, "", run_at, run_at
    schedule.timezone = tz


def schedule_validate(*, event: dict, cron: str = "", run_at: datetime | None = None, tz: str = "UTC",
                      now: datetime | None = None) -> Schedule:
    """The checks of create without saving (the admin form's clean): event, cron or run_at, zone."""
    schedule = Schedule(event=_event_check(event), name=event.get("name", ""))
    _timing(schedule, cron=cron, run_at=run_at, tz=tz, now=now or timezone.now())
    return schedule


def schedule_create(*, tenant, name: str, event: dict, cron: str = "", run_at: datetime | None = None,
                    tz: str = "UTC", now: datetime | None = None, actor=None, ip: str | None = None) -> Schedule:
    """A cron schedule (recurring) or a one-time one (run_at); exactly one of them."""
    now = now or timezone.now()
    _event_check(event)
    schedule = Schedule(tenant=tenant, name=name or event["name"], event=event, created_at=now)
    _timing(schedule, cron=cron, run_at=run_at, tz=tz, now=now)
    with transaction.atomic():
        schedule.save()
        _audit(actor, "schedule.create", schedule, {"kind": schedule.kind, "cron": schedule.cron,
                                                     "timezone": tz, "event": event["name"]}, ip)
    return schedule


_UNSET = object()


@transaction.atomic
def schedule_update(*, tenant, schedule_id: int, name: str | None = None, event: dict | None = None,
                    cron: str | None = None, run_at=_UNSET, tz: str | None = None, now: datetime | None = None,
                    actor=None, ip: str | None = None) -> Schedule:
    """Change a live schedule with the create checks; the next run is recomputed from now."""
    now = now or timezone.now()
    schedule = Schedule.objects.select_for_update().filter(tenant=tenant, pk=schedule_id).first()
    if schedule is None:
        raise errors.NotFound("No such schedule.")
    if schedule.cancelled_at is not None:
        raise errors.ScheduleState("A cancelled schedule cannot be changed.")
    before = {"name": schedule.name, "cron": schedule.cron, "run_at": schedule.run_at and schedule.run_at.isoformat(),
              "timezone": schedule.timezone, "event": schedule.event}
    if event is not None:
        schedule.event = _event_check(event)
    if name:
        schedule.name = name
    if cron is not None or run_at is not _UNSET or tz is not None:
        new_cron = cron if cron is not None else ("" if run_at not in (_UNSET, None) else schedule.cron)
        new_run_at = run_at if run_at is not _UNSET else (None if cron else schedule.run_at)
        _timing(schedule, cron=new_cron, run_at=new_run_at, tz=tz or schedule.timezone, now=now)
    schedule.save()
    after = {"name": schedule.name, "cron": schedule.cron, "run_at": schedule.run_at and schedule.run_at.isoformat(),
             "timezone": schedule.timezone, "event": schedule.event}
    _audit(actor, "schedule.update", schedule,
           {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}, ip)
    return schedule


@transaction.atomic
def schedule_cancel(*, tenant, schedule_id: int, now: datetime | None = None, actor=None,
                    ip: str | None = None) -> Schedule:
    schedule = Schedule.objects.select_for_update().filter(tenant=tenant, pk=schedule_id).first()
    if schedule is None:
        raise errors.NotFound("No such schedule.")
    if schedule.cancelled_at is not None:
        raise errors.ScheduleState("The schedule is already cancelled.")
    schedule.cancelled_at, schedule.next_run_at = now or timezone.now(), None
    schedule.save(update_fields=["cancelled_at", "next_run_at"])
    _audit(actor, "schedule.cancel", schedule, {}, ip)
    return schedule


@dataclass
class ScheduleStats:
    fired: int = 0
    failed: int = 0


def schedules_run(*, now: datetime | None = None, limit: int = 200) -> ScheduleStats:
    """Fire due schedules once each; a recurring one moves to its next occurrence after now
    (occurrences missed while beat was down are not replayed in a burst)."""
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

"""Journey use cases: save a version, pause/resume/archive, enrol, react to events, advance due runs.

Durability follows the message queue's rules: a run is a PostgreSQL row; workers claim due runs with
``FOR UPDATE SKIP LOCKED`` and a lease, then advance each run in its own transaction holding its row
lock. A worker killed mid-batch leaves some runs advanced (committed with their messages) and the
rest leased; when the lease lapses another worker takes them. A step is recorded under
``(run, seq)`` (unique) in the same transaction as its message, whose idempotency key is
``journey:<run>:<seq>``, so no step runs twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from comms.campaigns.segments import audience_queryset, iter_chunks
from comms.erasure import ErasureSubject, Phase, eraser_register
from comms.models import Recipient
from comms.router.journey_advance import AdvanceStats, journeys_advance, journeys_tick  # noqa: F401 (re-exported)
from comms.router.journey_definition import journey_validate
from comms.router.journey_engine import condition_context, event_apply, event_effect
from comms.router.models import Journey, JourneyRun, JourneyVersion
from comms.router.rules import condition_eval

log = logging.getLogger(__name__)
Run = JourneyRun
LIVE = list(JourneyRun.LIVE)


# --- definitions and status -----------------------------------------------------------------------

@transaction.atomic
def journey_save(*, tenant, key: str, definition: Any, name: str | None = None, notes: str = "", actor=None,
                 ip: str | None = None) -> tuple[JourneyVersion, list[dict]]:
    """Validate and store a new version and make it the one new runs start on. Running runs stay on theirs.

    Returns (version, warnings); an unchanged definition returns the current version.
    """
    key = (key or "").strip()
    if not key or len(key) > 100 or not key.replace("-", "").replace("_", "").isalnum():
        raise errors.JourneyInvalid("key: letters, digits, '-' and '_' (at most 100).", details={"path": "key"})
    definition, warnings = journey_validate(definition, tenant=tenant)
    journey, created = Journey.objects.select_for_update().get_or_create(
        tenant=tenant, key=key, defaults={"name": name or key})
    if name and journey.name != name:
        journey.name = name
    current = journey.active_version
    if current is not None and current.definition == definition:
        journey.save()
        return current, warnings
    last = journey.versions.order_by("-version").values_list("version", flat=True).first() or 0
    names = [t["event"] for k in ("goals", "exits") for t in definition.get(k, [])]
    version = JourneyVersion.objects.create(
        journey=journey, version=last + 1, definition=definition, notes=notes,
        entry_event=definition["entry"].get("event", ""), goal_events=sorted(set(names)),
        created_by=actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None)
    journey.active_version = version
    journey.save()
    audit_record(actor=actor, action="journey.create" if created else "journey.version", target=journey,
                 diff={"version": version.version, "notes": notes}, ip=ip, tenant=tenant)
    return version, warnings


@transaction.atomic
def journey_set_status(*, journey: Journey, status: str, actor=None, ip: str | None = None) -> Journey:
    """pause (timers held, events still recorded on runs), resume, archive (no new entries; runs finish)."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Journey.Status.ARCHIVED and status != Journey.Status.ARCHIVED:
        raise errors.JourneyState("An archived journey cannot be resumed or paused; save it under a new key.")
    previous, journey.status = journey.status, status
    journey.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action=f"journey.{status}", target=journey, diff={"previous": previous}, ip=ip)
    if status == Journey.Status.ACTIVE:
        transaction.on_commit(lambda: _dispatch(None))
    return journey


@transaction.atomic
def journey_migrate_runs(*, journey: Journey, to_version: int | None = None, actor=None,
                         ip: str | None = None) -> dict[str, int]:
    """Move live runs of older versions onto `to_version` (default: the active one) where their current
    step id exists there; the others stay on their version (counted as 'kept')."""
    target = (journey.versions.filter(version=to_version).first() if to_version
              else journey.active_version)
    if target is None:
        raise errors.NotFound(f"Journey '{journey.key}' has no version {to_version}.")
    live = JourneyRun.objects.filter(journey=journey, state__in=LIVE).exclude(version=target)
    moved = live.filter(step__in=list(target.definition["steps"])).update(version=target)
    kept = live.count()
    audit_record(actor=actor, action="journey.migrate_runs", target=journey, ip=ip,
                 diff={"to_version": target.version, "moved": moved, "kept": kept})
    return {"moved": moved, "kept": kept, "to_version": target.version}


# --- entering ---------------------------------------------------------------------------------------

def _reentry_refusal(journey: Journey, version: JourneyVersion, recipient: Recipient, now: datetime) -> str:
    policy = version.definition.get("reentry", {"policy": "once_at_a_time"})
    runs = JourneyRun.objects.filter(journey=journey, recipient=recipient)
    if runs.filter(state__in=LIVE).exists():
        return "already in this journey"
    if policy["policy"] == "once" and runs.exists():
        return "policy 'once': entered before"
    if policy["policy"] == "after" and runs.filter(entered_at__gt=now - timedelta(days=policy["days"])).exists():
        return f"policy 'after': entered within {policy['days']} days"
    return ""


def journey_enter(*, journey: Journey, recipient: Recipient, payload: dict, source: str, now: datetime,
                  version: JourneyVersion | None = None) -> tuple[JourneyRun | None, str]:
    """Start a run on the active version (due now) unless the re-entry policy says no: (run, refusal)."""
    version = version or journey.active_version
    if journey.status != Journey.Status.ACTIVE or version is None:
        return None, f"journey is {journey.status}"
    refusal = _reentry_refusal(journey, version, recipient, now)
    if refusal:
        return None, refusal
    run = JourneyRun(tenant_id=journey.tenant_id, journey=journey, version=version, recipient=recipient,
                     step=version.definition["start"], next_due_at=now, entered_at=now,
                     context={"entry": payload, "source": source})
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:  # a concurrent entry won (journey_run_one_live)
        return None, "already in this journey"
    transaction.on_commit(lambda: _dispatch([run.id]))
    return run, ""


def journey_enrol(*, journey: Journey, recipient_id: str, payload: dict | None = None, actor=None,
                  now: datetime | None = None) -> JourneyRun:
    """The API entry: enrol one recipient (any journey may be enrolled into, whatever its entry)."""
    now = now or timezone.now()
    recipient = Recipient.objects.filter(tenant_id=journey.tenant_id, external_id=recipient_id).first()
    if recipient is None:
        raise errors.RecipientNotFound(f"No recipient '{recipient_id}'.", details={"recipient": recipient_id})
    with transaction.atomic():
        run, refusal = journey_enter(journey=journey, recipient=recipient, payload=payload or {}, source="api",
                                     now=now)
        if run is None:
            if journey.status != Journey.Status.ACTIVE:
                raise errors.JourneyState(f"The journey is {journey.status}; it takes no new entries.")
            raise errors.JourneyNotEntered(f"Not entered: {refusal}.", details={"reason": refusal})
        audit_record(actor=actor, action="journey.enrol", target=journey, diff={"recipient": recipient_id,
                                                                                "run": str(run.id)})
    return run


def journey_enrol_segment(*, journey: Journey, now: datetime | None = None, chunk: int = 10_000) -> int:
    """Enter every recipient of the entry segment (those already live are skipped); returns runs created.

    Per chunk, recipients the re-entry policy keeps out (a live run; 'once': any run; 'after': a recent
    one) are left out, and the rest written with ON CONFLICT DO NOTHING on the one-live-run index (a
    concurrent entry wins; it is then counted here too). A COPY path for millions is a later step.
    """
    now = now or timezone.now()
    version = journey.active_version
    segment = (version.definition["entry"].get("segment") if version else None)
    if not segment:
        raise errors.JourneyState("This journey's entry is not a segment.")
    if journey.status != Journey.Status.ACTIVE:
        raise errors.JourneyState(f"The journey is {journey.status}; it takes no new entries.")
    created = 0
    policy = version.definition.get("reentry", {"policy": "once_at_a_time"})
    for rows in iter_chunks(audience_queryset(tenant=journey.tenant, audience={"segment": segment}), chunk):
        ids = [pk for pk, *_ in rows]
        before = JourneyRun.objects.filter(journey=journey, recipient_id__in=ids)
        if policy["policy"] == "once_at_a_time":
            before = before.filter(state__in=LIVE)
        elif policy["policy"] == "after":
            before = before.filter(Q(state__in=LIVE) | Q(entered_at__gt=now - timedelta(days=policy["days"])))
        seen = {str(r) for r in before.values_list("recipient_id", flat=True)}
        ids = [pk for pk in ids if str(pk) not in seen]
        runs = [JourneyRun(tenant_id=journey.tenant_id, journey=journey, version=version, recipient_id=pk,
                           step=version.definition["start"], next_due_at=now, entered_at=now,
                           context={"entry": {}, "source": f"segment:{segment}"}) for pk in ids]
        with transaction.atomic():
            created += len(JourneyRun.objects.bulk_create(runs, ignore_conflicts=True))
    transaction.on_commit(lambda: _dispatch(None))
    return created


# --- events -------------------------------------------------------------------------------------------

def journeys_on_event(*, tenant, name: str, payload: dict, recipient_ids: list[str], event_id: str,
                      now: datetime) -> list[dict]:
    """End (goal/exit), wake (waiting for this event) and enter runs for the event's recipients.

    Runs are found through indexes: live runs by (tenant, recipient, state), waiting ones by
    (tenant, recipient, waiting_for), entries by the version's entry_event. Returns an outcome list.
    """
    if not recipient_ids:
        return []
    entries = list(JourneyVersion.objects.filter(entry_event=name, journey__tenant=tenant,
                                                 journey__status=Journey.Status.ACTIVE,
                                                 journey__active_version=F("id")).select_related("journey"))
    touched = (JourneyRun.objects.filter(tenant=tenant, recipient__tenant=tenant,
                                         recipient__external_id__in=recipient_ids)
               .filter(Q(state=JourneyRun.State.WAITING, waiting_for=name)
                       | Q(state__in=LIVE, version__goal_events__contains=[name])))
    if not entries and not touched.exists():  # the common case costs these two indexed queries
        return []
    recipients = list(Recipient.objects.filter(tenant=tenant, external_id__in=recipient_ids))
    out: list[dict] = []
    by_pk = {r.pk: r for r in recipients}
    woken: list[uuid.UUID] = []
    for run in touched.select_for_update(of=("self",)).select_related("version", "journey").order_by("id"):
        recipient = by_pk[run.recipient_id]
        effect = event_effect(run, recipient, name, payload)
        if not effect:
            continue
        event_apply(run, recipient, effect=effect, name=name, payload=payload, now=now, event_id=event_id)
        run.save()
        out.append({"journey": run.journey.key, "run": str(run.id), "recipient": recipient.external_id,
                    "action": {"goal": "converted", "exit": "exited", "wake": "woken"}[effect]})
        if effect == "wake":
            woken.append(run.id)
    for version in entries:
        when = version.definition["entry"].get("when")
        for recipient in recipients:
            probe = JourneyRun(context={"entry": payload})
            if when and not condition_eval(when, condition_context(probe, recipient, payload, name)).passed:
                continue
            run, refusal = journey_enter(journey=version.journey, recipient=recipient, payload=payload,
                                         source=f"event:{name}", now=now, version=version)
            out.append({"journey": version.journey.key, "recipient": recipient.external_id,
                        **({"action": "entered", "run": str(run.id)} if run else {"action": "not_entered",
                                                                                  "reason": refusal})})
    if woken:
        transaction.on_commit(lambda: _dispatch(woken))
    return out


def _dispatch(run_ids: list | None) -> None:
    """Queue ``comms.router.journeys_wake`` (tasks.py) by name: the task module imports this one."""
    try:
        current_app.send_task("comms.router.journeys_wake", args=[[str(i) for i in run_ids] if run_ids else None],
                              queue="p1", expires=300)
    except Exception:  # the run is durable; the beat tick advances it
        log.warning("journey wake-up not sent; the router tick will advance the runs", exc_info=True)


# --- erasure ----------------------------------------------------------------------------------------

def erase_journey_runs(*, subject: ErasureSubject) -> dict[str, int]:
    """GDPR erasure mid-run: the person's runs end by being deleted with their steps (nothing retained)."""
    deleted, per_model = JourneyRun.objects.filter(tenant_id=subject.tenant_id,
                                                   recipient_id=subject.recipient_id).delete()
    if not deleted:
        return {}  # in no journey: nothing to report (as the other erasers)
    return {"journey_runs": per_model.get("router.JourneyRun", 0),
            "journey_steps": per_model.get("router.JourneyStep", 0)}


def register_erasers() -> None:
    eraser_register(erase_journey_runs, phase=Phase.RECORDS)

"""Staged rollout of a template version with automatic rollback (issue 20).

An approved version that is not yet live goes to ``percent`` of recipients; everyone else keeps the
template's active version (``previous``). Who gets which is decided by the same salted hash as the
experiments (``services.render.sticky_point``): a recipient's point never moves, so raising the
percentage only adds recipients to the new version and nobody flips back and forth. Steps are raised by
hand (API/admin) or by the beat (``rollouts_tick``) along a schedule; 100 % makes the version the
active one and ends the rollout. The beat also compares the new version's rates with the old one's
over the rollout window and rolls back on a breached guardrail (alert + audit row + the reason kept
on the rollout for the admin and the API).

Single sends (``delivery.services.message_enqueue``: the API, events, journeys) are split when accepted.
Bulk batches and campaigns pin the active version on the batch and their rows are rendered by the
worker, so they are split there (``rollout_splits``, one query per claimed batch): at send time, by the
same sticky point, against the rollout's state *then* — a campaign written an hour ago follows a step,
a completion or a rollback that happened since, and each row records the version it was sent with.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from comms.redis import redis_client
from templates_app.models import Template, TemplateRollout, TemplateVersion
from templates_app.services.lifecycle import _activate, version_approve
from templates_app.services.render import SendRender, render_for_send, sticky_point

log = logging.getLogger(__name__)
State = TemplateRollout.State
OPEN = (State.RUNNING, State.PAUSED)
METRICS = ("bounce", "complaint", "unsubscribe", "render_error")

RolloutPercentInvalid = errors.error_class("COMMS_ROLLOUT_PERCENT_INVALID", 400,
                                           "A rollout percentage is a number from 0 to 100.")
RolloutNotApproved = errors.error_class("COMMS_ROLLOUT_NOT_APPROVED", 409,
                                        "Only an approved version that is not live can be rolled out.")
RolloutInProgress = errors.error_class("COMMS_ROLLOUT_IN_PROGRESS", 409,
                                       "A rollout of this template is already in progress.")
RolloutPreviousArchived = errors.error_class("COMMS_ROLLOUT_PREVIOUS_ARCHIVED", 409,
                                             "The previous version was archived; there is nothing to roll back to.")
RolloutFinished = errors.error_class("COMMS_ROLLOUT_FINISHED", 409, "The rollout has already finished.")
RolloutNotFound = errors.error_class("COMMS_ROLLOUT_NOT_FOUND", 404, "This template has no rollout.")


# --- input --------------------------------------------------------------------------------------------

def _percent(value: Any, field: str = "percent") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 100:
        raise RolloutPercentInvalid(f"{field} must be a number from 0 to 100; got {value!r}.",
                                    details={"field": field, "value": str(value)[:40]})
    return float(value)


def _schedule(steps: Any, start: float) -> list[float]:
    if steps in (None, ""):
        return []
    if not isinstance(steps, list):
        raise errors.ValidationFailed("schedule is a list of percentages, e.g. [25, 100].",
                                      details={"field": "schedule"})
    out = [_percent(s, f"schedule[{i}]") for i, s in enumerate(steps)]
    if any(b <= a for a, b in zip([start, *out], out)):
        raise errors.ValidationFailed("schedule steps must rise above the starting percentage, each above the last.",
                                      details={"field": "schedule", "start": start, "schedule": out})
    return out


def _guardrails(overrides: Any) -> dict:
    rules = {m: dict(v) for m, v in settings.COMMS_ROLLOUT_GUARDRAILS.items()}
    if overrides in (None, {}):
        return rules
    if not isinstance(overrides, dict) or set(overrides) - set(METRICS):
        raise errors.ValidationFailed("guardrails: an object keyed by " + ", ".join(METRICS) + ".",
                                      details={"field": "guardrails"})
    for metric, rule in overrides.items():
        if not isinstance(rule, dict) or set(rule) - {"max_pct", "max_ratio", "min_delta_pct"} or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in rule.values()):
            raise errors.ValidationFailed(f"guardrails.{metric}: max_pct, max_ratio, min_delta_pct (numbers ≥ 0).",
                                          details={"field": f"guardrails.{metric}"})
        rules.setdefault(metric, {}).update(rule)
    return rules


def _actor_label(actor: Any) -> str:
    if actor is None:
        return "system"
    if hasattr(actor, "get_username"):
        return actor.get_username()
    key = getattr(actor, "api_key", None)
    return f"api-key:{key.prefix}" if key is not None else str(actor)


def _step(rollout: TemplateRollout, percent: float, actor: Any, now: datetime, why: str) -> None:
    rollout.percent = percent
    rollout.history = [*rollout.history, {"at": now.isoformat(), "percent": percent, "by": _actor_label(actor),
                                          "why": why}]
    rollout.next_step_at = now + timedelta(seconds=rollout.step_seconds) \
        if rollout.schedule and rollout.step_seconds and rollout.state == State.RUNNING else None


# --- use cases ------------------------------------------------------------------------------------------

@transaction.atomic
def rollout_start(*, template: Template, version: TemplateVersion, percent: Any, actor: Any,
                  schedule: Any = None, step_seconds: int | None = None, min_volume: int | None = None,
                  guardrails: Any = None, now: datetime | None = None) -> TemplateRollout:
    """Start sending ``version`` to ``percent`` of recipients; the active version keeps the rest."""
    now = now or timezone.now()
    percent = _percent(percent)
    steps = _schedule(schedule, percent)
    rules = _guardrails(guardrails)
    if step_seconds is not None and (isinstance(step_seconds, bool) or not isinstance(step_seconds, int)
                                     or step_seconds < 1):
        raise errors.ValidationFailed("step_seconds is a whole number of seconds ≥ 1.", details={"field": "step_seconds"})
    if min_volume is not None and (isinstance(min_volume, bool) or not isinstance(min_volume, int) or min_volume < 1):
        raise errors.ValidationFailed("min_volume is a whole number ≥ 1.", details={"field": "min_volume"})
    template = Template.objects.select_for_update(of=("self",)).select_related("active_version").get(pk=template.pk)
    version = TemplateVersion.objects.get(pk=version.pk)
    if version.template_id != template.pk:
        raise errors.NotFound("That version belongs to another template.")
    if version.status != TemplateVersion.Status.APPROVED or version.pk == template.active_version_id:
        raise RolloutNotApproved(f"v{version.version} is {version.get_status_display().lower()}"
                                 + (" and already live" if version.pk == template.active_version_id else "")
                                 + "; only an approved version that is not live can be rolled out.",
                                 details={"version": version.version, "status": version.status})
    if template.active_version is None:
        raise RolloutNotApproved("The template has no live version to roll out from; activate this one instead.",
                                 details={"version": version.version})
    if template.active_version.status == TemplateVersion.Status.ARCHIVED:
        raise RolloutPreviousArchived(details={"previous": template.active_version.version})
    running = TemplateRollout.objects.filter(template=template, state__in=OPEN).first()
    if running is not None:
        raise RolloutInProgress(f"v{running.version.version} is being rolled out ({running.percent:g} %); "
                                "finish or roll it back first.", details={"rollout": running.pk})
    rollout = TemplateRollout(template=template, version=version, previous=template.active_version, schedule=steps,
                              step_seconds=step_seconds, salt=secrets.token_hex(8), started_at=now,
                              min_volume=min_volume or settings.COMMS_ROLLOUT_MIN_VOLUME, guardrails=rules,
                              started_by=_actor_label(actor))
    _step(rollout, percent, actor, now, "start")
    try:
        with transaction.atomic():
            rollout.save()
    except IntegrityError:  # a concurrent start won the one-open-rollout constraint
        raise RolloutInProgress() from None
    audit_record(actor=actor, action="template.rollout_start", target=rollout, tenant=template.tenant,
                 diff={"version": version.version, "previous": rollout.previous.version, "percent": percent,
                       "schedule": steps, "step_seconds": step_seconds})
    if percent >= 100:
        _complete(rollout, actor, now)
    return rollout


def _locked(rollout: TemplateRollout) -> TemplateRollout:
    return TemplateRollout.objects.select_for_update(of=("self",)).select_related("template", "version", "previous").get(
        pk=rollout.pk)


def _complete(rollout: TemplateRollout, actor: Any, now: datetime) -> None:
    rollout.state, rollout.finished_at, rollout.next_step_at, rollout.schedule = State.COMPLETED, now, None, []
    rollout.save()
    _activate(rollout.version, actor=actor, reason=f"rollout {rollout.pk} reached 100 %")
    audit_record(actor=actor, action="template.rollout_complete", target=rollout, tenant=rollout.template.tenant,
                 diff={"version": rollout.version.version})


def _locked_open(rollout: TemplateRollout) -> TemplateRollout:
    """The rollout, locked; a finished one cannot be advanced, paused or rolled back again."""
    rollout = _locked(rollout)
    if not rollout.open:
        raise RolloutFinished(f"The rollout is {rollout.get_state_display().lower()}.",
                              details={"state": rollout.state})
    return rollout


@transaction.atomic
def rollout_advance(*, rollout: TemplateRollout, actor: Any, percent: Any = None,
                    now: datetime | None = None) -> TemplateRollout:
    """Raise the share: to ``percent``, else the next scheduled step, else 100 % (which completes it)."""
    now = now or timezone.now()
    rollout = _locked_open(rollout)
    if percent is None:
        target = rollout.schedule[0] if rollout.schedule else 100.0
    else:
        target = _percent(percent)
        if target <= rollout.percent:
            raise RolloutPercentInvalid(f"Advancing goes up: the rollout is at {rollout.percent:g} %; roll back "
                                        "to go down.", details={"field": "percent", "current": rollout.percent})
    before = rollout.percent
    rollout.schedule = [s for s in rollout.schedule if s > target]
    rollout.state = State.RUNNING
    _step(rollout, target, actor, now, "scheduled step" if actor is None else "advanced")
    rollout.save()
    audit_record(actor=actor, action="template.rollout_advance", target=rollout, tenant=rollout.template.tenant,
                 diff={"percent": [before, target]})
    if target >= 100:
        _complete(rollout, actor, now)
    return rollout


@transaction.atomic
def rollout_pause(*, rollout: TemplateRollout, actor: Any, resume: bool = False,
                  now: datetime | None = None) -> TemplateRollout:
    """Hold the split where it is (the schedule stops; guardrails keep watching), or resume it."""
    now = now or timezone.now()
    rollout = _locked_open(rollout)
    rollout.state = State.RUNNING if resume else State.PAUSED
    rollout.next_step_at = now + timedelta(seconds=rollout.step_seconds) \
        if resume and rollout.schedule and rollout.step_seconds else None
    rollout.save()
    audit_record(actor=actor, action="template.rollout_resume" if resume else "template.rollout_pause",
                 target=rollout, tenant=rollout.template.tenant, diff={"percent": rollout.percent})
    return rollout


@transaction.atomic
def rollout_rollback(*, rollout: TemplateRollout, actor: Any, reason: str = "", details: dict | None = None,
                     now: datetime | None = None) -> TemplateRollout:
    """Send everyone the previous version again; ``details`` says why (a breached guardrail's figures)."""
    now = now or timezone.now()
    rollout = _locked_open(rollout)
    if rollout.previous.status == TemplateVersion.Status.ARCHIVED:
        raise RolloutPreviousArchived(f"v{rollout.previous.version} was archived; there is nothing to roll back to.",
                                      details={"previous": rollout.previous.version})
    before = rollout.percent
    rollout.state, rollout.finished_at, rollout.next_step_at = State.ROLLED_BACK, now, None
    rollout.rollback_reason = {"by": _actor_label(actor), "at": now.isoformat(), "reason": reason or "by hand",
                               "percent": before, **(details or {})}
    rollout.percent = 0
    rollout.save()
    audit_record(actor=actor, action="template.rollout_rollback", target=rollout, tenant=rollout.template.tenant,
                 reason=reason or "by hand", diff={"percent": [before, 0], **(details or {})})
    return rollout


# --- the send path ----------------------------------------------------------------------------------------

def _open_rollout(version: TemplateVersion) -> TemplateRollout | None:
    # active_version() says in its own query whether one is open: no extra query when none is (the usual case).
    known = getattr(version.template, "open_rollout_id", False)
    if known is None:
        return None
    rollouts = TemplateRollout.objects.filter(state__in=OPEN).select_related("version")
    rollouts = rollouts.filter(pk=known) if known else rollouts.filter(template_id=version.template_id)
    rollout = rollouts.first()
    return rollout if rollout is not None and rollout.previous_id == version.pk else None


def rollout_pick(*, version: TemplateVersion, recipient_key: str) -> TemplateVersion:
    """The version this recipient gets: the rollout's new one when their sticky point falls under the
    percentage, else ``version`` (the active one). Costs a query only while a rollout is open."""
    rollout = _open_rollout(version)
    if rollout is None or not recipient_key or rollout.percent <= 0:
        return version
    if sticky_point(rollout.salt, "rollout", recipient_key) * 100 < rollout.percent:
        chosen = rollout.version
        chosen.template = version.template
        return chosen
    return version


def _render_error_key(rollout_id: int, version_id: int, *, row: bool = False) -> str:
    # ``row``: a bulk row that could not render is also a message row (already in the volume).
    return f"comms:rollout:{rollout_id}:{'row_' if row else ''}render_errors:{version_id}"


def render_for_recipient(*, version: TemplateVersion, channel: str, variables: dict, locale: str, timezone: str,
                         recipient_key: str) -> SendRender:
    """``render_for_send`` of the version a staged rollout gives this recipient (``SendRender.version``).
    A refusal to render (missing variable, broken content) during a rollout is counted per version:
    a single send that cannot render never becomes a message row, so the guardrail counts it here."""
    chosen = rollout_pick(version=version, recipient_key=recipient_key)
    try:
        return render_for_send(version=chosen, channel=channel, variables=variables, locale=locale,
                               timezone=timezone, recipient_key=recipient_key)
    except errors.CommsError:
        rollout = _open_rollout(version)
        if rollout is not None:
            rollout_count_render_error(rollout_id=rollout.pk, version_id=chosen.pk)
        raise


def rollout_count_render_error(*, rollout_id: int, version_id: int, row: bool = False) -> None:
    """One refusal to render a version during a rollout (the render-error guardrail's numerator);
    ``row`` for a bulk row, which (unlike a refused single send) is a message row counted as accepted."""
    try:  # Redis down loses the count, never the send's own error
        redis_client().incr(_render_error_key(rollout_id, version_id, row=row))
    except Exception:  # noqa: BLE001
        log.warning("rollout %s: could not count a render error", rollout_id, exc_info=True)


# --- the bulk send path (rows rendered by the worker from their batch's pinned version) -----------------

@dataclass(frozen=True)
class BatchSplit:
    """What a rollout says about the rows of batches pinned to its previous version, at send time."""
    rollout_id: int
    salt: str
    percent: float  # 0 once rolled back, 100 once completed
    new: TemplateVersion
    finished_at: datetime | None

    def pick(self, *, pinned: TemplateVersion, pinned_at: datetime, recipient_key: str,
             current_id: int | None) -> TemplateVersion:
        """The version a row of a batch pinned to ``pinned`` at ``pinned_at`` is sent with now.

        A row already given the new version (an earlier attempt rendered and archived it) keeps it,
        so a retry sends what the archive says. A rollout that finished before the batch was pinned
        says nothing about it (the batch pinned the version that was live after it)."""
        if current_id == self.new.pk:
            return self._new(pinned)
        if self.finished_at is not None and self.finished_at < pinned_at:
            return pinned
        if self.percent >= 100 or (self.percent > 0 and recipient_key
                                   and sticky_point(self.salt, "rollout", recipient_key) * 100 < self.percent):
            return self._new(pinned)
        return pinned

    def _new(self, pinned: TemplateVersion) -> TemplateVersion:
        self.new.template = pinned.template  # the caller's template row (channels, trusted, locale default)
        return self.new


def rollout_splits(*, pinned: Iterable[tuple[int, datetime]]) -> dict[int, BatchSplit]:
    """Per pinned version id: the split its batches' rows follow now. ``pinned`` is (version id, the
    batch's created_at) per batch. One query, whatever the number of rows; none without a version.

    The open rollout from that version if there is one, else the latest that finished (completed: the
    rows follow it to 100 %; rolled back: to 0 %) after the earliest of those batches was pinned."""
    since: dict[int, datetime] = {}
    for version_id, at in pinned:
        if version_id:
            since[version_id] = min(at, since.get(version_id, at))
    if not since:
        return {}
    earliest = min(since.values())
    candidates = TemplateRollout.objects.filter(previous_id__in=since).filter(
        Q(state__in=OPEN) | Q(finished_at__gte=earliest)).select_related("version").order_by("started_at", "pk")
    out: dict[int, BatchSplit] = {}
    for r in candidates:  # oldest first: an open rollout, or the latest finished one, wins
        if r.open or out.get(r.previous_id) is None or out[r.previous_id].finished_at is not None:
            percent = 100.0 if r.state == State.COMPLETED else 0.0 if r.state == State.ROLLED_BACK else r.percent
            out[r.previous_id] = BatchSplit(rollout_id=r.pk, salt=r.salt, percent=percent, new=r.version,
                                            finished_at=None if r.open else r.finished_at)
    return out


@transaction.atomic
def version_approve_and_roll_out(*, version: TemplateVersion, user: Any, notes: str = "", percent: Any,
                                 schedule: Any = None, step_seconds: int | None = None) -> TemplateVersion:
    """Approve; when this is the last approval needed, start a rollout instead of going live for everyone.
    A refused rollout (bad percentage, one already running) refuses the approval too (one transaction)."""
    _percent(percent)
    version = version_approve(version=version, user=user, notes=notes, activate=False)
    if version.status == TemplateVersion.Status.APPROVED:
        rollout_start(template=version.template, version=version, percent=percent, actor=user, schedule=schedule,
                      step_seconds=step_seconds)
    return version

"""Read queries of journeys: per-step counts and one run's timeline (API and admin read these)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from comms.router.journey_definition import edges
from comms.router.models import Journey, JourneyRun, JourneyStep, JourneyVersion

_RESUMED = {"event", "timeout", "elapsed"}  # a wait's second record: how the run left it


def journey_runs(*, journey: Journey, state: str | None = None, recipient: str | None = None) -> QuerySet:
    runs = JourneyRun.objects.filter(journey=journey).select_related("version", "recipient")
    if state:
        runs = runs.filter(state=state)
    if recipient:
        runs = runs.filter(recipient__external_id=recipient)
    return runs.order_by("-entered_at")


def step_order(definition: dict) -> list[str]:
    """Step ids breadth-first from the start (the order a reader follows), then any unreachable ones.

    The stored definition is jsonb, which does not keep the key order it was written in."""
    steps = definition.get("steps", {})
    order: list[str] = []
    queue = [definition["start"]] if definition.get("start") in steps else []
    while queue:
        sid = queue.pop(0)
        if sid in order:
            continue
        order.append(sid)
        queue += [n for n in edges(steps[sid]) if n in steps and n not in order]
    return order + sorted(set(steps) - set(order))


def journey_stats(*, journey: Journey, version: JourneyVersion | None = None) -> dict[str, Any]:
    """Per step: entered, waiting now, and how many went each way (outcome → count); run totals by state."""
    version = version or journey.active_version
    runs = JourneyRun.objects.filter(journey=journey, version=version)
    by_state = dict(runs.values_list("state").annotate(n=Count("id")).order_by())
    waiting = dict(runs.filter(state__in=JourneyRun.LIVE).values_list("step").annotate(n=Count("id")).order_by())
    rows = (JourneyStep.objects.filter(journey=journey, version=version).values_list("step", "kind", "outcome")
            .annotate(n=Count("id")).order_by())
    steps: dict[str, dict[str, Any]] = {}
    definition = version.definition if version else {"steps": {}}
    for sid in step_order(definition):
        steps[sid] = {"step": sid, "type": definition["steps"][sid]["type"], "entered": 0, "waiting": 0,
                      "outcomes": {}}
    for sid, kind, outcome, n in rows:
        entry = steps.setdefault(sid, {"step": sid, "type": kind, "entered": 0, "waiting": 0, "outcomes": {}})
        entry["outcomes"][outcome] = n
        if not (kind == "wait" and outcome in _RESUMED):
            entry["entered"] += n
    for sid, n in waiting.items():
        if sid in steps and steps[sid]["type"] == "wait":
            steps[sid]["waiting"] = n
    return {"journey": journey.key, "version": version.version if version else None,
            "runs": {"entered": sum(by_state.values()), **{s: by_state.get(s, 0) for s in JourneyRun.State.values}},
            "steps": list(steps.values())}


def run_timeline(*, run: JourneyRun) -> dict[str, Any]:
    """One recipient's run: its state and every step it executed, in order."""
    steps = JourneyStep.objects.filter(run=run).order_by("seq")
    return {
        "id": str(run.id), "journey": run.journey.key, "version": run.version.version,
        "recipient": run.recipient.external_id, "state": run.state, "step": run.step,
        "next_due_at": run.next_due_at, "waiting_for": run.waiting_for, "entered_at": run.entered_at,
        "exited_at": run.exited_at, "converted_at": run.converted_at, "exit_reason": run.exit_reason,
        "timeline": [{"seq": s.seq, "step": s.step, "kind": s.kind, "outcome": s.outcome,
                      "message_id": str(s.message_id) if s.message_id else None, "detail": s.detail, "at": s.at}
                     for s in steps],
    }

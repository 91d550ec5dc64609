"""Dry run of a journey for one recipient and a list of timestamped events, on simulated time.

It drives the same engine (``run_advance``, ``event_effect``/``event_apply``) with a ``Simulation``:
send steps are the rule runner's dry run (the real preference decision, quiet hours and channel
fallback, nothing enqueued), updates change an in-memory copy, outcomes of earlier messages are
what the caller says to assume. Everything runs inside a transaction that is rolled back, so even a
bug could not leave a row behind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from comms import errors
from comms.models import Recipient
from comms.router.journey_definition import journey_validate
from comms.router.journey_engine import (
    Simulation, condition_context, event_apply, event_effect, run_advance,
)
from comms.router.models import Journey, JourneyRun, JourneyVersion
from comms.router.rules import condition_eval

MAX_ITERATIONS = 2000
HORIZON = timedelta(days=400)


def _enter(journey: Journey, version: JourneyVersion, recipient: Recipient, payload: dict, at: datetime) -> JourneyRun:
    return JourneyRun(tenant_id=journey.tenant_id, journey=journey, version=version, recipient=recipient,
                      step=version.definition["start"], next_due_at=at, entered_at=at,
                      context={"entry": payload, "source": "simulation"})


def journey_simulate(*, tenant, journey: Journey | None, recipient_id: str, events: list[dict],
                     definition: dict | None = None, start_at: datetime | None = None, enrol: bool = False,
                     payload: dict | None = None, outcomes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The path and the messages a recipient would get. ``events``: [{name, at, payload?}] (any order)."""
    with transaction.atomic():
        result = _simulate(tenant, journey, recipient_id, events, definition, start_at, enrol, payload or {},
                           outcomes or {})
        transaction.set_rollback(True)
    return result


def _simulate(tenant, journey, recipient_id, events, definition, start_at, enrol, payload, outcomes) -> dict:
    if definition is not None:
        definition, warnings = journey_validate(definition, tenant=tenant)
        journey = journey or Journey(tenant=tenant, key="simulation", name="simulation")
        version = JourneyVersion(journey=journey, version=0, definition=definition)
    else:
        version, warnings = journey.active_version, []
        if version is None:
            raise errors.JourneyState("The journey has no version to simulate.")
    recipient = Recipient.objects.filter(tenant=tenant, external_id=recipient_id).first()
    if recipient is None:
        raise errors.RecipientNotFound(f"No recipient '{recipient_id}'.", details={"recipient": recipient_id})
    timeline = sorted(events, key=lambda e: e["at"])
    clock = start_at or (timeline[0]["at"] if timeline else timezone.now())
    end = clock + HORIZON
    sim = Simulation(outcomes=outcomes)
    log: list[dict] = []
    runs: list[JourneyRun] = []
    run = _enter(journey, version, recipient, payload, clock) if enrol else None
    if run is not None:
        runs.append(run)
        log.append({"at": clock.isoformat(), "event": "(enrol)", "effect": "entered"})
    entry = version.definition["entry"]
    for _ in range(MAX_ITERATIONS):
        live = run is not None and run.state in JourneyRun.LIVE
        timer = run.next_due_at if live else None
        if timeline and (timer is None or timeline[0]["at"] <= timer):
            event = timeline.pop(0)
            clock = max(clock, event["at"])
            name, data = event["name"], event.get("payload", {})
            effect = event_effect(run, recipient, name, data) if live else ""
            if effect:
                event_apply(run, recipient, effect=effect, name=name, payload=data, now=clock, sim=sim)
            elif not live and entry.get("event") == name and (not entry.get("when") or condition_eval(
                    entry["when"], condition_context(JourneyRun(context={"entry": data}), recipient, data,
                                                     name)).passed) and _may_reenter(version, runs, clock):
                run, effect = _enter(journey, version, recipient, data, clock), "entered"
                runs.append(run)
            log.append({"at": clock.isoformat(), "event": name, "effect": effect or "ignored"})
        elif timer is not None and timer <= end:
            clock = max(clock, timer)
            run_advance(run, recipient=recipient, now=clock, sim=sim)
        else:
            break
    return {
        "version": version.version, "warnings": warnings, "events": log, "path": sim.steps, "messages": sim.messages,
        "state": run.state if run else "not_entered", "exit_reason": run.exit_reason if run else "",
        "next_due_at": run.next_due_at.isoformat() if run and run.next_due_at else None,
        "runs": len(runs),
    }


def _may_reenter(version: JourneyVersion, runs: list[JourneyRun], at: datetime) -> bool:
    """Called only when no run is live: the re-entry policy decides (as ``journeys._reentry_refusal``)."""
    policy = version.definition.get("reentry", {"policy": "once_at_a_time"})
    if not runs or policy["policy"] == "once_at_a_time":
        return True
    if policy["policy"] == "once":
        return False
    return runs[-1].entered_at <= at - timedelta(days=policy["days"])

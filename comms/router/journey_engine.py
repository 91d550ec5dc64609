"""The journey step engine: walks one run through its version's step graph until it waits or ends.

It is the one step engine of the router: a ``send`` step is executed by the routing rules' step
runner (``events.step_send``: channel order with fallback, the preference decision, quiet hours,
digests, one ``message_enqueue`` with an idempotency key), so rules and journeys decide and send the
same way. What journeys add around it is the graph: waits (a duration, a recipient-local time, an
event with a timeout), branches, updates and exits.

``run_advance`` changes the run in memory and records each executed step; the caller holds the
run's row lock and saves it in the same transaction, so a step and its message commit together or
not at all. With a ``Simulation`` it writes nothing: sends are dry runs, updates apply to a copy.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from comms.enums import Category
from comms.models import Recipient
from comms.router.steps import step_send
from comms.router.models import JourneyRun, JourneyStep
from comms.router.rules import condition_eval
from comms.services import recipient_attributes_update
from preferences.services import preferences_update
from tracking.scores import recipient_scores
from tracking.send_time import BestHourPlanner
from tracking.selectors import message_outcomes

State = JourneyRun.State
MAX_STEPS_PER_ADVANCE = 100  # a graph without wait-free cycles (refused at save) ends far sooner
PATH_KEEP = 200


@dataclass
class Simulation:
    """A dry run's side: what would be sent, and the outcomes to assume for earlier messages."""

    outcomes: dict[str, list[str]] = field(default_factory=dict)  # send step id → ["opened", …]
    messages: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)


_RUN_STATE = ("state", "step", "seq", "next_due_at", "waiting_for", "wait_condition", "context", "exited_at",
              "converted_at", "exit_reason", "path")


class Batch:
    """Many runs advanced in one transaction: step rows are buffered for one bulk insert, and a run that
    raises is undone alone (its savepoint, taken lazily before its first side effect, and its buffered
    rows) while the others commit."""

    def __init__(self) -> None:
        self.rows: list[JourneyStep] = []
        self.sent: dict[Any, list[datetime]] = {}  # recipient id → journey sends buffered in this batch
        self.cache: dict = {}  # look-ups shared by the batch's sends (one transaction): template versions
        self._savepoint: str | None = None
        self._mark: tuple = ()

    def begin(self, run: JourneyRun) -> None:
        self._savepoint = None
        self._mark = (len(self.rows), {k: copy.deepcopy(getattr(run, k)) for k in _RUN_STATE},
                      {r: list(v) for r, v in self.sent.items()})

    def protect(self) -> None:
        """Before a step writes (a message, an update): make it undoable with the rest of this run."""
        if self._savepoint is None:
            self._savepoint = transaction.savepoint()

    def undo(self, run: JourneyRun) -> None:
        if self._savepoint is not None:
            transaction.savepoint_rollback(self._savepoint)
        count, state, sent = self._mark
        del self.rows[count:]
        for key, value in state.items():
            setattr(run, key, value)
        self.sent = sent


def recipient_context(recipient: Recipient) -> dict[str, Any]:
    return {"id": recipient.external_id, "locale": recipient.locale, "timezone": recipient.timezone,
            "attributes": recipient.attributes}


def condition_context(run: JourneyRun, recipient: Recipient, payload: dict | None = None,
                      name: str = "") -> dict[str, Any]:
    """Names a journey condition may use: payload (the event at hand, else the entry), entry, recipient."""
    entry = run.context.get("entry", {})
    return {"payload": entry if payload is None else payload, "entry": entry, "actor": {},
            "event": {"name": name}, "recipient": recipient_context(recipient)}


def split_bucket(*, salt: str, journey_key: str, step: str, recipient: str) -> int:
    """0..99, the same for a recipient every time (sticky), independent across journeys and steps."""
    digest = hashlib.sha256(f"{salt}\x00{journey_key}\x00{step}\x00{recipient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def next_local_time(now: datetime, tz_name: str, at: str, days: str = "any") -> datetime:
    """The next moment after `now` that is `at` (HH:MM) on an allowed day in the recipient's time zone."""
    try:
        tz = ZoneInfo(tz_name or "UTC")
    except Exception:  # an unknown zone in the directory must not stall the run
        tz = ZoneInfo("UTC")
    hour, minute = map(int, at.split(":"))
    local = now.astimezone(tz)
    for offset in range(0, 9):
        day = (local + timedelta(days=offset)).date()
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if candidate <= now:
            continue
        weekday = candidate.weekday()
        if days == "weekdays" and weekday >= 5 or days == "weekends" and weekday < 5:
            continue
        return candidate
    return now + timedelta(days=1)  # unreachable for the allowed day sets


class _Walker:
    def __init__(self, run: JourneyRun, recipient: Recipient, now: datetime, sim: Simulation | None,
                 batch: Batch | None = None):
        self.run, self.recipient, self.now, self.sim, self.batch = run, recipient, now, sim, batch
        self.definition: dict = run.version.definition
        self.steps: dict = self.definition["steps"]

    # --- bookkeeping -----------------------------------------------------------------------------
    def record(self, step: str, kind: str, outcome: str, message_id: str | None = None,
               detail: dict | None = None) -> None:
        run = self.run
        run.seq += 1
        run.path = [*run.path, [step, outcome, self.now.isoformat()]][-PATH_KEEP:]
        row = {"seq": run.seq, "step": step, "kind": kind, "outcome": outcome[:64], "message_id": message_id or None,
               "detail": detail or {}, "at": self.now}
        if self.sim is not None:
            self.sim.steps.append({**row, "at": self.now.isoformat()})
            return
        step_row = JourneyStep(run=run, journey_id=run.journey_id, version_id=run.version_id,
                               recipient_id=run.recipient_id, **row)
        if self.batch is not None:
            self.batch.rows.append(step_row)
            if kind == "send" and outcome == "sent":
                self.batch.sent.setdefault(run.recipient_id, []).append(self.now)
        else:
            step_row.save(force_insert=True)

    def finish(self, state: str, reason: str) -> None:
        run = self.run
        run.state, run.exit_reason = state, reason[:200]
        run.exited_at, run.next_due_at, run.waiting_for, run.wait_condition = self.now, None, "", ""
        if state == State.CONVERTED:
            run.converted_at = self.now

    def go(self, target: str | None) -> None:
        if target is None:
            self.finish(State.COMPLETED, "end of the journey")
        else:
            self.run.step = target

    # --- the walk --------------------------------------------------------------------------------
    def advance(self) -> None:
        run = self.run
        for _ in range(MAX_STEPS_PER_ADVANCE):
            if run.state not in JourneyRun.LIVE:
                return
            sid = run.step
            step = self.steps.get(sid)
            if step is None:  # only after an explicit migration to a version without this step
                self.finish(State.FAILED, f"step '{sid}' is not in version {run.version.version}")
                return
            if not getattr(self, f"_{step['type']}")(sid, step):
                return
        run.next_due_at = self.now  # a very long wait-free stretch: continue on the next claim

    def _wait(self, sid: str, step: dict) -> bool:
        run = self.run
        if run.state != State.WAITING:  # entering the wait
            if "seconds" in step:
                due = self.now + timedelta(seconds=step["seconds"])
            elif "until" in step:
                due = next_local_time(self.now, self.recipient.timezone, step["until"]["at"],
                                      step["until"].get("days", "any"))
            else:
                due = self.now + timedelta(seconds=step["timeout_seconds"])
                run.waiting_for, run.wait_condition = step["event"], step.get("when", "")
            run.state, run.next_due_at = State.WAITING, due
            self.record(sid, "wait", "waiting", detail={"until": due.isoformat(),
                                                        **({"event": step["event"]} if "event" in step else {})})
            return False
        wake = run.context.pop("_wake", None)
        run.state, run.waiting_for, run.wait_condition = State.ACTIVE, "", ""
        if wake is not None:
            run.context.setdefault("events", {})[wake["name"]] = wake.get("payload", {})
            self.record(sid, "wait", "event", detail={"event": wake["name"], "event_id": wake.get("event_id", "")})
            self.go(step.get("on_event", step.get("next")))
        else:
            self.record(sid, "wait", "timeout" if "event" in step else "elapsed")
            self.go(step.get("next"))
        run.next_due_at = self.now
        return True

    def _capped(self) -> bool:
        cap = self.definition.get("frequency_cap")
        if not cap:
            return False
        since = self.now - timedelta(days=1)
        if self.sim is not None:
            sent = sum(1 for m in self.sim.messages if m["at"] >= since.isoformat())
        else:
            sent = JourneyStep.objects.filter(recipient_id=self.run.recipient_id, kind="send", outcome="sent",
                                              at__gt=since, at__lte=self.now).count()
            if self.batch is not None:
                sent += sum(since < at <= self.now for at in self.batch.sent.get(self.run.recipient_id, []))
        return sent >= cap["per_day"]

    def _send(self, sid: str, step: dict) -> bool:
        run = self.run
        if self._capped():
            self.record(sid, "send", "capped", detail={"per_day": self.definition["frequency_cap"]["per_day"]})
            self.go(step.get("next"))
            return True
        if self.batch is not None:
            self.batch.protect()
        plan = step_send(
            tenant=run.journey.tenant, recipient=self.recipient, step=step, variables=run.context.get("entry", {}),
            idempotency=f"journey:{run.id}:{run.seq + 1}",
            metadata={"journey": run.journey.key, "journey_version": run.version.version, "journey_run": str(run.id),
                      "journey_step": sid},
            category=step.get("category", Category.MARKETING), priority=int(step.get("priority", 3)), now=self.now,
            dry_run=self.sim is not None, cache=self.batch.cache if self.batch is not None else None,
            not_before=self._best_hour(step))
        detail = {k: v for k, v in plan.as_dict().items() if k in ("channel", "fallback", "decision", "code",
                                                                     "reason", "template_version", "scheduled_for")}
        if plan.action in ("send", "duplicate", "digest"):
            outcome = "digested" if plan.action == "digest" else "sent"
            message_id = plan.message_id if plan.message_id and ":" not in plan.message_id else None
            if message_id:
                run.context.setdefault("messages", {})[sid] = message_id
            if self.sim is not None:
                self.sim.messages.append({"at": self.now.isoformat(), "step": sid, "template": step["template"],
                                          **detail})
            self.record(sid, "send", outcome, message_id=message_id, detail=detail)
            self.go(step.get("next"))
            return True
        self.record(sid, "send", "blocked" if plan.action in ("blocked", "skip") else "error", detail=detail)
        if step.get("on_blocked", self.definition.get("on_blocked", "continue")) == "exit":
            self.finish(State.EXITED, f"send '{sid}' {plan.action}: {plan.code or plan.reason}"[:200])
        else:
            self.go(step.get("next"))
        return True

    def _best_hour(self, step: dict) -> datetime | None:
        """``send_at: {"best_hour_within": N}``: the recipient's best hour (tracking/send_time.py) in the next
        N hours, for the step's first channel's quiet hours. The message's scheduled_for is the wait; the
        run moves on at once, as after any send. One planner (the population read) per batch."""
        window = (step.get("send_at") or {}).get("best_hour_within")
        if not window:
            return None
        channel, category = step["channels"][0], step.get("category", Category.MARKETING)
        cache = self.batch.cache if self.batch is not None else {}
        planner = cache.get(("best_hour", channel, category))
        if planner is None:
            planner = cache[("best_hour", channel, category)] = BestHourPlanner(
                tenant_id=self.run.journey.tenant_id, channel=channel, category=category, until=self.now)
        return planner.plan([self.recipient.pk], start=self.now, within_hours=int(window))[str(self.recipient.pk)]

    def _outcomes(self, ref: str) -> set[str]:
        if self.sim is not None:
            return set(self.sim.outcomes.get(ref, []))
        message_id = self.run.context.get("messages", {}).get(ref)
        return message_outcomes(message_id=message_id) if message_id else set()

    def _branch(self, sid: str, step: dict) -> bool:
        run = self.run
        target, why = None, "default"
        for index, case in enumerate(step.get("cases", [])):
            if "when" in case:
                context = condition_context(run, self.recipient)
                if "engagement_score" in case["when"]:  # one read, only for conditions that name a score
                    context["recipient"].update(recipient_scores(recipient_id=self.recipient.pk))
                if condition_eval(case["when"], context).passed:
                    target, why = case["next"], f"case {index}: {case['when']}"
            elif case["message"]["is"] in self._outcomes(case["message"]["step"]):
                target, why = case["next"], f"case {index}: {case['message']['step']} {case['message']['is']}"
            if target:
                break
        if target is None and step.get("split"):
            bucket = split_bucket(salt=self.definition.get("salt", ""), journey_key=run.journey.key, step=sid,
                                  recipient=self.recipient.external_id)
            edge = 0
            for part in step["split"]:
                edge += part["percent"]
                if bucket < edge:
                    target, why = part["next"], f"split bucket {bucket} < {edge}"
                    break
        target = target or step.get("default")
        self.record(sid, "branch", target or "end", detail={"why": why})
        self.go(target)
        return True

    def _update(self, sid: str, step: dict) -> bool:
        changed: dict[str, Any] = {}
        if self.batch is not None and self.sim is None:
            self.batch.protect()
        if step.get("attributes"):
            if self.sim is None:
                recipient_attributes_update(recipient=self.recipient, attributes=step["attributes"],
                                            actor=f"journey:{self.run.journey.key}")
            else:
                self.recipient.attributes = {**self.recipient.attributes, **step["attributes"]}
            changed["attributes"] = sorted(step["attributes"])
        if step.get("preferences"):
            if self.sim is None:
                changed["preferences"] = preferences_update(
                    recipient=self.recipient, changes=step["preferences"], updated_by="system",
                    source=f"journey:{self.run.journey.key}", now=self.now)
            else:
                changed["preferences"] = len(step["preferences"])
        self.record(sid, "update", "updated", detail=changed)
        self.go(step.get("next"))
        return True

    def _exit(self, sid: str, step: dict) -> bool:
        self.record(sid, "exit", "exited")
        self.finish(State.EXITED, step.get("name") or f"exit step '{sid}'")
        return False


def run_advance(run: JourneyRun, *, recipient: Recipient, now: datetime | None = None,
                sim: Simulation | None = None, batch: Batch | None = None) -> JourneyRun:
    """Run steps until the run waits or ends. The caller holds the row lock and saves ``run`` (with a
    ``batch``: bulk-inserts ``batch.rows`` and bulk-updates the runs in the same transaction)."""
    _Walker(run, recipient, now or timezone.now(), sim, batch).advance()
    return run


def trigger_matches(triggers: list[dict], run: JourneyRun, recipient: Recipient, name: str, payload: dict) -> bool:
    return any(t["event"] == name and (not t.get("when") or condition_eval(
        t["when"], condition_context(run, recipient, payload, name)).passed) for t in triggers)


def event_effect(run: JourneyRun, recipient: Recipient, name: str, payload: dict) -> str:
    """What an event does to a live run: 'goal', 'exit', 'wake' or '' (nothing)."""
    definition = run.version.definition
    if trigger_matches(definition.get("goals", []), run, recipient, name, payload):
        return "goal"
    if trigger_matches(definition.get("exits", []), run, recipient, name, payload):
        return "exit"
    if run.state == State.WAITING and run.waiting_for == name and (not run.wait_condition or condition_eval(
            run.wait_condition, condition_context(run, recipient, payload, name)).passed):
        return "wake"
    return ""


def event_apply(run: JourneyRun, recipient: Recipient, *, effect: str, name: str, payload: dict, now: datetime,
                event_id: str = "", sim: Simulation | None = None) -> None:
    """Apply ``event_effect``'s verdict: end the run (goal/exit), or mark it woken and due now."""
    walker = _Walker(run, recipient, now, sim)
    if effect == "goal":
        walker.record("(goal)", "goal", "converted", detail={"event": name, "event_id": event_id})
        walker.finish(State.CONVERTED, f"goal event '{name}'")
    elif effect == "exit":
        walker.record("(exit)", "exit", "exited", detail={"event": name, "event_id": event_id})
        walker.finish(State.EXITED, f"exit event '{name}'")
    elif effect == "wake":
        # Clearing waiting_for makes a second copy of the event (another cause_ref) find nothing to wake.
        run.context["_wake"] = {"name": name, "payload": payload, "event_id": event_id}
        run.waiting_for, run.wait_condition, run.next_due_at = "", "", now

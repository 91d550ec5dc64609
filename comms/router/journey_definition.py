"""The journey definition: its JSON schema and the checks a schema cannot express.

A definition is a graph of named steps (``send``, ``wait``, ``branch``, ``update``, ``exit``)
entered from an event, a segment or the API. Saving refuses what could never run correctly (a
dangling step id, a branch with no default, a cycle that no wait breaks, so one advance would loop
forever; a template that does not exist) with a typed error naming the JSON path, and warns about
what is merely suspicious (waiting for an event nothing has ever emitted).
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from comms import errors
from comms.campaigns.models import Segment
from comms.enums import Category, Channel
from comms.router.models import Event, JourneyVersion, RoutingRule
from comms.router.rules import condition_check
from templates_app import services as templates
from tracking.send_time import within_hours_clean

_ID = {"type": "string", "pattern": r"^[A-Za-z0-9_.?-]{1,64}$"}
_COND = {"type": "string", "minLength": 1, "maxLength": 500}
_EVENT = {"type": "string", "minLength": 1, "maxLength": 128}
_CHANNELS = {"type": "array", "items": {"enum": Channel.values}, "minItems": 1, "uniqueItems": True}
_TRIGGER = {"type": "object", "additionalProperties": False, "required": ["event"],
            "properties": {"event": _EVENT, "when": _COND}}
OUTCOMES = ("delivered", "opened", "clicked", "bounced", "unread", "read", "sent", "blocked")


def _step(kind: str, required: list[str], **props: Any) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["type", *required],
            "properties": {"type": {"const": kind}, "name": {"type": "string", "maxLength": 200}, "next": _ID,
                           **props}}


JOURNEY_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "additionalProperties": False, "required": ["entry", "start", "steps"],
    "properties": {
        "description": {"type": "string"},
        "entry": {"oneOf": [
            {"type": "object", "additionalProperties": False, "required": ["event"],
             "properties": {"event": _EVENT, "when": _COND}},
            {"type": "object", "additionalProperties": False, "required": ["segment"],
             "properties": {"segment": {"type": "string", "minLength": 1, "maxLength": 200}}},
            {"type": "object", "additionalProperties": False, "required": ["api"],
             "properties": {"api": {"const": True}}},
        ]},
        "start": _ID,
        "steps": {"type": "object", "minProperties": 1, "maxProperties": 100,
                  "propertyNames": _ID, "additionalProperties": {"oneOf": [
            _step("send", ["template", "channels"], template={"type": "string", "minLength": 1, "maxLength": 128},
                  channels=_CHANNELS, priority={"type": "integer", "minimum": 0, "maximum": 4},
                  channel_order={"enum": ["as_listed", "best_first"]},
                  category={"enum": Category.values}, on_blocked={"enum": ["continue", "exit"]},
                  send_at={"type": "object"}),  # {"best_hour_within": N}: checked below with a typed error
            _step("wait", [], seconds={"type": "integer", "minimum": 1, "maximum": 366 * 86400},
                  until={"type": "object", "additionalProperties": False, "required": ["at"],
                         "properties": {"at": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                                        "days": {"enum": ["any", "weekdays", "weekends"]}}},
                  event=_EVENT, when=_COND, timeout_seconds={"type": "integer", "minimum": 1, "maximum": 366 * 86400},
                  on_event=_ID),
            _step("branch", [], default=_ID,
                  cases={"type": "array", "maxItems": 20, "items": {
                      "type": "object", "additionalProperties": False, "required": ["next"],
                      "properties": {"next": _ID, "when": _COND, "message": {
                          "type": "object", "additionalProperties": False, "required": ["step", "is"],
                          "properties": {"step": _ID, "is": {"enum": list(OUTCOMES)}}}}}},
                  split={"type": "array", "minItems": 1, "maxItems": 10, "items": {
                      "type": "object", "additionalProperties": False, "required": ["percent", "next"],
                      "properties": {"percent": {"type": "integer", "minimum": 0, "maximum": 100}, "next": _ID}}}),
            _step("update", [], attributes={"type": "object", "maxProperties": 50},
                  preferences={"type": "array", "maxItems": 20, "items": {
                      "type": "object", "additionalProperties": False, "required": ["category", "channel", "enabled"],
                      "properties": {"category": {"type": "string"}, "channel": {"enum": Channel.values},
                                     "enabled": {"type": "boolean"}}}}),
            _step("exit", []),
        ]}},
        "goals": {"type": "array", "maxItems": 10, "items": _TRIGGER},
        "exits": {"type": "array", "maxItems": 10, "items": _TRIGGER},
        "reentry": {"type": "object", "additionalProperties": False, "required": ["policy"],
                    "properties": {"policy": {"enum": ["once", "once_at_a_time", "after"]},
                                   "days": {"type": "integer", "minimum": 1, "maximum": 3650}}},
        "frequency_cap": {"type": "object", "additionalProperties": False, "required": ["per_day"],
                          "properties": {"per_day": {"type": "integer", "minimum": 1, "maximum": 1000}}},
        "on_blocked": {"enum": ["continue", "exit"]},
        "salt": {"type": "string", "maxLength": 64},
    },
}
_VALIDATOR = Draft202012Validator(JOURNEY_SCHEMA)


def _path(parts) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def edges(step: dict) -> list[str]:
    """Every step id this step may go to next."""
    out = [step[k] for k in ("next", "on_event", "default") if k in step]
    out += [c["next"] for c in step.get("cases", [])] + [s["next"] for s in step.get("split", [])]
    return out


def _invalid(path: str, message: str, cls: type[errors.CommsError] = errors.JourneyInvalid) -> errors.CommsError:
    return cls(f"{path}: {message}", details={"path": path})


def _check_cycles(steps: dict) -> None:
    """A cycle among steps that are not waits would spin in one advance: refuse it (Tarjan-free DFS)."""
    graph = {sid: [n for n in edges(s) if steps[n]["type"] != "wait"] for sid, s in steps.items()
             if s["type"] != "wait"}
    colour: dict[str, int] = {}
    for root in graph:
        if colour.get(root):
            continue
        stack = [(root, iter(graph[root]))]
        colour[root], trail = 1, [root]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                trail.pop()
            elif colour.get(child) == 1:
                loop = trail[trail.index(child):] + [child]
                raise errors.JourneyCycle(f"$.steps: {' → '.join(loop)} loops with no wait in it.",
                                          details={"path": "$.steps", "cycle": loop})
            elif not colour.get(child):
                colour[child] = 1
                trail.append(child)
                stack.append((child, iter(graph[child])))


def _check_send_at(base: str, send_at: dict) -> None:
    """``send_at: {"best_hour_within": N}``: the message waits for the recipient's best hour (1..168 h)."""
    unknown = sorted(set(send_at) - {"best_hour_within"})
    if unknown or not send_at:
        raise _invalid(f"{base}.send_at", "send_at takes best_hour_within (hours, 1..168) and nothing else"
                       + (f"; unknown: {', '.join(unknown)}." if unknown else "."))
    within_hours_clean(send_at["best_hour_within"], path=f"{base}.send_at.best_hour_within")


def journey_validate(definition: Any, *, tenant=None) -> tuple[dict, list[dict]]:
    """Schema plus graph checks; returns (definition, warnings). With a tenant, templates must exist."""
    problems = sorted(_VALIDATOR.iter_errors(definition), key=lambda e: list(map(str, e.absolute_path)))
    if problems:
        first = problems[0]
        path = _path(first.absolute_path)
        raise errors.JourneyInvalid(f"{path}: {first.message}", details={
            "path": path, "errors": [{"path": _path(p.absolute_path), "message": p.message} for p in problems[:20]]})
    steps: dict = definition["steps"]
    if definition["start"] not in steps:
        raise _invalid("$.start", f"no step '{definition['start']}'.")
    conditions = [("$.entry.when", definition["entry"].get("when"))]
    conditions += [(f"$.{k}[{i}].when", t.get("when")) for k in ("goals", "exits")
                   for i, t in enumerate(definition.get(k, []))]
    for sid, step in steps.items():
        base = f"$.steps.{sid}"
        for target in edges(step):
            if target not in steps:
                raise _invalid(base, f"goes to '{target}', which is not a step.")
        conditions.append((f"{base}.when", step.get("when")))
        conditions += [(f"{base}.cases[{i}].when", c.get("when")) for i, c in enumerate(step.get("cases", []))]
        kind = step["type"]
        if kind == "wait":
            modes = sum(k in step for k in ("seconds", "until", "event"))
            if modes != 1:
                raise _invalid(base, "a wait takes exactly one of seconds, until or event.")
            if "event" in step and "timeout_seconds" not in step:
                raise _invalid(base, "waiting for an event needs timeout_seconds (a run must not wait forever).")
            if "event" not in step and ("when" in step or "on_event" in step):
                raise _invalid(base, "when/on_event only apply to a wait for an event.")
        if kind == "branch":
            split = sum(s["percent"] for s in step.get("split", []))
            if split > 100:
                raise _invalid(f"{base}.split", f"percentages add up to {split} (at most 100).")
            if "default" not in step and not (step.get("split") and split == 100):
                raise _invalid(base, "a branch needs a default (where a recipient goes when no case matches).",
                               errors.JourneyBranchDefault)
            for i, case in enumerate(step.get("cases", [])):
                if ("when" in case) == ("message" in case):
                    raise _invalid(f"{base}.cases[{i}]", "a case has either when or message.")
                ref = case.get("message", {}).get("step")
                if ref is not None and steps.get(ref, {}).get("type") != "send":
                    raise _invalid(f"{base}.cases[{i}].message.step", f"'{ref}' is not a send step.")
        if kind == "send" and "send_at" in step:
            _check_send_at(base, step["send_at"])
        if kind == "update" and not (step.get("attributes") or step.get("preferences")):
            raise _invalid(base, "an update changes attributes or preferences.")
    for path, expression in conditions:
        if expression:
            try:
                condition_check(expression)
            except errors.ConditionInvalid as exc:
                raise _invalid(path, exc.message) from None
    _check_cycles(steps)
    reentry = definition.get("reentry", {})
    if reentry.get("policy") == "after" and "days" not in reentry:
        raise _invalid("$.reentry", "policy 'after' needs days.")
    warnings: list[dict] = []
    if tenant is not None and "segment" in definition["entry"]:
        if not Segment.objects.filter(tenant=tenant, name=definition["entry"]["segment"]).exists():
            raise _invalid("$.entry.segment", f"no saved segment '{definition['entry']['segment']}'.")
    if tenant is not None:
        for sid, step in steps.items():
            if step["type"] == "send":
                try:
                    templates.active_version(tenant=tenant, template_key=step["template"])
                except errors.CommsError:
                    path = f"$.steps.{sid}.template"
                    raise errors.TemplateNotFound(f"{path}: no active template '{step['template']}'.",
                                                  details={"path": path, "template": step["template"]}) from None
            if step["type"] == "wait" and "event" in step and not event_known(tenant, step["event"]):
                warnings.append({"code": "COMMS_JOURNEY_EVENT_UNSEEN", "path": f"$.steps.{sid}.event",
                                 "message": f"No event '{step['event']}' has been received yet and no rule or "
                                            "journey names it; the wait will only ever time out if nothing "
                                            "emits it."})
    return definition, warnings


def event_known(tenant, name: str) -> bool:
    """Has anything emitted (or been set up to react to) this event name?"""
    return (Event.objects.filter(tenant=tenant, name=name).exists()
            or RoutingRule.objects.filter(tenant=tenant, event_name=name).exists()
            or JourneyVersion.objects.filter(journey__tenant=tenant, entry_event=name).exists())

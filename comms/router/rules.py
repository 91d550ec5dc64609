"""Routing rules: the JSON schema of a rule, safe conditions, key templates, versioned saves.

A rule maps an event name to steps. Each step says which template to render, on which channels
(first reachable one wins, the rest are fallbacks), under which condition, after which delay,
whether to collect into a digest, and whether to escalate when an in-app item stays unread.

Conditions are expressions over the event (``payload.amount > 100 and actor.role == "host"``)
evaluated by simpleeval: no attribute access to dunders, no calls except a few safe functions,
bounded powers and string sizes. ``eval`` is never used.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

import simpleeval
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from comms import errors
from comms.audit import audit_record
from comms.enums import Category, Channel
from comms.router.models import RoutingRule, RoutingRuleVersion

_CHANNELS = {"type": "array", "items": {"enum": Channel.values}, "minItems": 1, "uniqueItems": True}
_KEY = {"type": "string", "minLength": 1, "maxLength": 200}

RULE_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["steps"],
    "properties": {
        "description": {"type": "string"},
        "dedupe": {
            "type": "object", "additionalProperties": False, "required": ["key"],
            "properties": {"key": _KEY, "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 7 * 86400}},
        },
        "steps": {
            "type": "array", "minItems": 1, "maxItems": 20,
            "items": {
                "type": "object", "additionalProperties": False, "required": ["template", "channels"],
                "properties": {
                    "name": {"type": "string", "maxLength": 64},
                    "template": {"type": "string", "minLength": 1, "maxLength": 128},
                    "channels": _CHANNELS,
                    # "best_first": the channel the recipient engages on goes first (tracking.scores).
                    "channel_order": {"enum": ["as_listed", "best_first"]},
                    "when": {"type": "string", "minLength": 1, "maxLength": 500},
                    "to": {"enum": ["recipients", "actor"]},
                    "delay_seconds": {"type": "integer", "minimum": 0, "maximum": 30 * 86400},
                    "priority": {"type": "integer", "minimum": 0, "maximum": 4},
                    "category": {"enum": Category.values},
                    "digest": {
                        "type": "object", "additionalProperties": False, "required": ["key", "template"],
                        "properties": {
                            "key": _KEY,
                            "template": {"type": "string", "minLength": 1, "maxLength": 128},
                            "cadence": {"enum": ["window", "hourly", "daily", "weekly"]},
                            "window_seconds": {"type": "integer", "minimum": 60, "maximum": 31 * 86400},
                            "at": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                            "weekday": {"type": "integer", "minimum": 0, "maximum": 6},
                        },
                    },
                    "escalation": {
                        "type": "object", "additionalProperties": False, "required": ["after_seconds", "channels"],
                        "properties": {
                            "after_seconds": {"type": "integer", "minimum": 1, "maximum": 30 * 86400},
                            "channels": _CHANNELS,
                            "template": {"type": "string", "minLength": 1, "maxLength": 128},
                        },
                    },
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(RULE_SCHEMA)
DEFAULT_DEDUPE_TTL = 300


def _path(parts) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def rule_validate(definition: Any) -> dict:
    """Schema check plus semantic checks; raises COMMS_RULE_INVALID naming the JSON path."""
    problems = sorted(_VALIDATOR.iter_errors(definition), key=lambda e: list(map(str, e.absolute_path)))
    if problems:
        first = problems[0]
        path = _path(first.absolute_path)
        raise errors.RuleInvalid(f"{path}: {first.message}", details={
            "path": path, "errors": [{"path": _path(p.absolute_path), "message": p.message} for p in problems[:20]],
        })
    for index, step in enumerate(definition["steps"]):
        if "when" in step:
            try:
                condition_check(step["when"])
            except errors.ConditionInvalid as exc:
                path = f"$.steps[{index}].when"
                raise errors.RuleInvalid(f"{path}: {exc.message}", details={"path": path}) from None
        escalation = step.get("escalation")
        if escalation and Channel.IN_APP not in step["channels"]:
            path = f"$.steps[{index}].escalation"
            raise errors.RuleInvalid(f"{path}: escalation watches an in-app item; add 'in_app' to channels.",
                                     details={"path": path})
        if escalation and step.get("digest"):
            path = f"$.steps[{index}]"
            raise errors.RuleInvalid(f"{path}: a step cannot both digest and escalate.", details={"path": path})
    return definition


# --- conditions ---------------------------------------------------------------------------------------

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.Eq, ast.NotEq,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Name, ast.Load, ast.Attribute,
    ast.Subscript, ast.Constant, ast.List, ast.Tuple, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod,
    ast.Call, ast.IfExp,
)
# ``entry``: a journey run's entry payload (absent for rules, so a rule naming it is simply "not met").
_NAMES = {"payload", "actor", "event", "recipient", "entry", "True", "False", "None"}
_FUNCTIONS = {"len": len, "lower": lambda s: str(s).lower(), "upper": lambda s: str(s).upper(),
              "int": int, "float": float, "str": str}


def condition_check(expression: str) -> None:
    """Refuse anything but comparisons and boolean logic over payload/actor/event/recipient."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise errors.ConditionInvalid(f"'{expression}' does not parse: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise errors.ConditionInvalid(f"'{type(node).__name__}' is not allowed in a condition.")
        if isinstance(node, ast.Name) and node.id not in _NAMES and node.id not in _FUNCTIONS:
            raise errors.ConditionInvalid(f"Unknown name '{node.id}'; use payload, actor, event or recipient.")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise errors.ConditionInvalid(f"Only {', '.join(sorted(_FUNCTIONS))} may be called.")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise errors.ConditionInvalid("Names starting with '_' are not allowed.")


@dataclass(frozen=True)
class ConditionResult:
    passed: bool
    reason: str


class _DataEval(simpleeval.EvalWithCompoundTypes):
    """``payload.items`` is the payload's key ``items``, never a Python attribute.

    simpleeval tries ``getattr`` before ``[]``: ``payload.items`` was ``dict.items`` (so
    ``len(payload.items) > 0`` was never met) and ``payload.name.upper`` a bound method. Event data
    is JSON, so a dotted name only reads a key of an object.
    """

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise simpleeval.FeatureNotAvailable("Names starting with '_' are not allowed.")
        value = self._eval(node.value)
        if isinstance(value, dict) and node.attr in value:
            return value[node.attr]
        raise simpleeval.AttributeDoesNotExist(node.attr, self.expr)


def condition_eval(expression: str, context: dict[str, Any]) -> ConditionResult:
    """Evaluate a condition; a missing field or a type error counts as 'not met', with the reason."""
    evaluator = _DataEval(names=context, functions=_FUNCTIONS)
    try:
        value = evaluator.eval(expression)
    except simpleeval.AttributeDoesNotExist as exc:
        return ConditionResult(False, f"condition '{expression}' not met: {exc.attr} is missing")
    except (simpleeval.InvalidExpression, TypeError, KeyError, IndexError, ValueError, ZeroDivisionError) as exc:
        return ConditionResult(False, f"condition '{expression}' could not be evaluated: {exc}")
    passed = bool(value)
    return ConditionResult(passed, f"condition '{expression}' {'met' if passed else 'not met'}")


# --- key templates ---------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return ""
    return value


def render_key(template: str, context: dict[str, Any]) -> str:
    """'BOOKING:{payload.booking_id}:{payload.status}' → 'BOOKING:42:confirmed'."""
    return _PLACEHOLDER.sub(lambda m: str(_lookup(context, m.group(1))), template)[:255]


# --- storage ---------------------------------------------------------------------------------------------

@transaction.atomic
def rule_save(*, tenant, event_name: str, definition: Any, notes: str = "", actor=None,
              description: str | None = None, ip: str | None = None) -> RoutingRuleVersion:
    """Validate and store a new version of the rule for `event_name`, and make it active.

    An unchanged definition does not add a version. Earlier versions stay for audit and rollback.
    """
    event_name = (event_name or "").strip()
    if not event_name:
        raise errors.RuleInvalid("event_name is required.", details={"path": "event_name"})
    rule_validate(definition)
    rule, created = RoutingRule.objects.select_for_update().get_or_create(tenant=tenant, event_name=event_name)
    if description is not None and rule.description != description:
        rule.description = description
    current = rule.active_version
    if current is not None and current.definition == definition:
        rule.save()
        return current
    last = rule.versions.order_by("-version").values_list("version", flat=True).first() or 0
    version = RoutingRuleVersion.objects.create(rule=rule, version=last + 1, definition=definition, notes=notes,
                                                created_by=actor if getattr(actor, "pk", None) else None,
                                                created_at=timezone.now())
    rule.active_version = version
    rule.save()
    _audit(actor, "routing_rule.create" if created or last == 0 else "routing_rule.version", version,
           {"event_name": event_name, "version": version.version, "notes": notes}, ip)
    return version


@transaction.atomic
def rule_activate(*, rule: RoutingRule, version: int, actor=None, ip: str | None = None) -> RoutingRuleVersion:
    """Roll back (or forward) to an existing version."""
    target = rule.versions.filter(version=version).first()
    if target is None:
        raise errors.NotFound(f"Rule '{rule.event_name}' has no version {version}.")
    previous = rule.active_version.version if rule.active_version_id else None
    rule.active_version = target
    rule.save(update_fields=["active_version", "updated_at"])
    _audit(actor, "routing_rule.activate", target, {"event_name": rule.event_name, "version": version,
                                                    "previous": previous}, ip)
    return target


def rule_for(*, tenant, event_name: str) -> RoutingRuleVersion | None:
    rule = RoutingRule.objects.filter(tenant=tenant, event_name=event_name).select_related("active_version").first()
    return rule.active_version if rule is not None else None


def _audit(actor, action: str, target: RoutingRuleVersion, data: dict, ip: str | None = None) -> None:
    audit_record(actor=actor, action=action, target=target, diff=data, ip=ip, tenant=target.rule.tenant)

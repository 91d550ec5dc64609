"""Event intake: store the event, find its rule, and turn each step into messages, digests or nothing.

Every message goes through ``delivery.services.message_enqueue`` (or the COPY bulk fan-out for a
segment audience), so an event adds no queue of its own. Exactly-once holds in three layers:
* the same event (tenant, name, cause_ref) is stored once: a replay returns the first record;
* a rule's dedupe key (``BOOKING:{payload.booking_id}:{payload.status}``) opens a Redis window
  (default 5 min) inside which equal events with other cause_refs produce nothing;
* each produced message carries the idempotency key (template, version, recipient, cause_ref).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.campaigns.segments import audience_queryset, iter_chunks
from comms.models import Recipient
from comms.router.decisions import ALLOW, BLOCK, DEFER, DIGEST, decide
from comms.router.dedupe import dedupe_open as _dedupe_open
from comms.router.dedupe import dedupe_release as _dedupe_release
from comms.router.dedupe import idempotency_key
from comms.router.digests import DigestSpec, digest_add
from comms.router.models import Escalation, Event, RoutingRuleVersion
from comms.router.rules import DEFAULT_DEDUPE_TTL, condition_eval, render_key, rule_for
from delivery import routing
from delivery.services import SendSpec, message_bulk_enqueue, message_enqueue
from delivery.services.enqueue import recipient_address_for
from templates_app import services as templates

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 1000


@dataclass(frozen=True)
class EventInput:
    name: str
    recipients: tuple[str, ...] = ()
    audience: dict = field(default_factory=dict)
    actor: dict = field(default_factory=dict)
    cause_ref: str = ""
    category: str = "transactional"
    priority: int = 2
    payload: dict = field(default_factory=dict)


@dataclass
class Plan:
    """What routing decided for one step and one recipient (the dry run shows exactly this)."""

    step: int
    recipient: str
    action: str  # send | digest | skip | blocked | error | duplicate | bulk
    reason: str = ""
    code: str = ""
    channel: str = ""
    fallback: list[str] = field(default_factory=list)
    decision: str = ""
    template: str = ""
    template_version: int | None = None
    scheduled_for: str | None = None
    message_id: str = ""
    escalation: dict | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None, [])}


def _context(event: EventInput, recipient: Recipient | None = None) -> dict[str, Any]:
    ctx = {"payload": event.payload, "actor": event.actor,
           "event": {"name": event.name, "cause_ref": event.cause_ref, "category": event.category}}
    if recipient is not None:
        ctx["recipient"] = {"id": recipient.external_id, "locale": recipient.locale, "timezone": recipient.timezone,
                            "attributes": recipient.attributes}
    return ctx


class _Router:
    """Routes one event; with dry_run it decides everything and writes nothing."""

    def __init__(self, *, tenant, event: EventInput, version: RoutingRuleVersion, record: Event | None,
                 now: datetime, dry_run: bool):
        self.tenant, self.event, self.version, self.record = tenant, event, version, record
        self.now, self.dry_run = now, dry_run
        self.plans: list[Plan] = []
        self._versions: dict[str, Any] = {}
        steps = version.definition["steps"]
        counts = Counter(s["template"] for s in steps)
        self._repeated = {t for t, n in counts.items() if n > 1}

    def run(self) -> list[Plan]:
        for index, step in enumerate(self.version.definition["steps"]):
            self._step(index, step)
        return self.plans

    def _template_version(self, key: str):
        if key not in self._versions:
            try:
                self._versions[key] = templates.active_version(tenant=self.tenant, template_key=key)
            except errors.CommsError as exc:
                self._versions[key] = exc
        return self._versions[key]

    def _targets(self, step: dict) -> list[str]:
        if step.get("to") == "actor":
            actor_id = str(self.event.actor.get("id", "")) if isinstance(self.event.actor, dict) else ""
            return [actor_id] if actor_id else []
        return list(self.event.recipients)

    def _step(self, index: int, step: dict) -> None:
        if self.event.audience and step.get("to") != "actor":
            self._step_audience(index, step)
            return
        targets = self._targets(step)
        directory = {r.external_id: r for r in Recipient.objects.filter(tenant=self.tenant, external_id__in=targets)}
        for external_id in targets:
            recipient = directory.get(external_id)
            if recipient is None:
                self.plans.append(Plan(index, external_id, "error", code=errors.RecipientNotFound.code,
                                       reason=f"no recipient '{external_id}'", template=step["template"]))
                continue
            self._recipient(index, step, recipient)

    def _recipient(self, index: int, step: dict, recipient: Recipient) -> None:
        plan = Plan(index, recipient.external_id, "send", template=step["template"])
        self.plans.append(plan)
        if "when" in step:
            result = condition_eval(step["when"], _context(self.event, recipient))
            if not result.passed:
                plan.action, plan.reason = "skip", result.reason
                return
        category = step.get("category", self.event.category)
        usable: list[str] = []
        notes: list[str] = []
        digest_cadence = ""
        until = None
        for channel in step["channels"]:
            try:
                address = recipient_address_for(channel, recipient)
            except errors.CommsError:
                notes.append(f"{channel}: no address")
                continue
            if not routing.channel_available(tenant_id=self.tenant.id, channel=channel):
                notes.append(f"{channel}: no provider")
                continue
            decision = decide(recipient=recipient, channel=channel, category=category, address=address, now=self.now)
            if decision.verdict == BLOCK:
                notes.append(f"{channel}: blocked ({decision.code or 'preference'})")
                plan.code = plan.code or decision.code or errors.PrefBlocked.code
                continue
            if decision.verdict == DIGEST and not usable:
                digest_cadence = decision.cadence or "daily"
            if decision.verdict == DEFER and not usable:
                plan.decision, plan.code = DEFER, decision.code or errors.QuietHours.code
                until = decision.until
                notes.append(f"{channel}: deferred ({decision.reason or 'quiet hours'})")
            usable.append(channel)
        if not usable:
            plan.action, plan.reason = "blocked", "; ".join(notes) or "no channel"
            plan.code = plan.code or errors.InvalidAddress.code
            return
        plan.channel, plan.fallback = usable[0], usable[1:]
        plan.decision = plan.decision or (DIGEST if digest_cadence else ALLOW)
        if plan.decision == ALLOW:
            plan.code = ""
        plan.reason = "; ".join([*notes, f"{plan.channel}: {plan.decision}"])
        digest = step.get("digest")
        if digest or digest_cadence:
            self._digest(plan, step, recipient, digest, digest_cadence, category)
            return
        self._send(plan, index, step, recipient, category, until)

    def _digest(self, plan: Plan, step: dict, recipient: Recipient, digest: dict | None, cadence: str,
                category: str) -> None:
        if digest:
            spec = DigestSpec(key=render_key(digest["key"], _context(self.event, recipient)),
                              template=digest["template"], cadence=digest.get("cadence", "window"),
                              window_seconds=digest.get("window_seconds", 3600), at=digest.get("at", "09:00"),
                              weekday=digest.get("weekday", 0))
        else:  # the recipient's preference asks for digests of this category
            spec = DigestSpec(key=f"pref:{category}:{cadence}", template=settings.COMMS_DIGEST_TEMPLATE,
                              cadence=cadence)
        plan.action = "digest"
        plan.reason += f"; collected into digest '{spec.key}' ({spec.cadence})"
        if self.dry_run:
            return
        item_key = f"{self.record.id}:{plan.step}"
        digest_row = digest_add(
            tenant=self.tenant, recipient=recipient, spec=spec, channels=[plan.channel, *plan.fallback],
            category=category, priority=int(step.get("priority", self.event.priority)), event=self.record,
            item_key=item_key, data={"event": self.event.name, "cause_ref": self.event.cause_ref,
                                     "payload": self.event.payload, "at": self.now.isoformat()},
            now=self.now)
        plan.message_id = f"digest:{digest_row.id}"

    def _send(self, plan: Plan, index: int, step: dict, recipient: Recipient, category: str, until) -> None:
        version = self._template_version(step["template"])
        if isinstance(version, errors.CommsError):
            plan.action, plan.code, plan.reason = "error", version.code, version.message
            return
        plan.template_version = version.version
        scheduled_for = None
        if step.get("delay_seconds"):
            scheduled_for = self.now + timedelta(seconds=step["delay_seconds"])
        if until is not None and (scheduled_for is None or until > scheduled_for):
            scheduled_for = until
        plan.scheduled_for = scheduled_for.isoformat() if scheduled_for else None
        escalation = step.get("escalation")
        if escalation and plan.channel == "in_app":
            plan.escalation = {"after_seconds": escalation["after_seconds"], "channels": escalation["channels"]}
        if self.dry_run:
            try:
                templates.check_variables(version, self.event.payload)
            except errors.CommsError as exc:
                plan.action, plan.code, plan.reason = "error", exc.code, exc.message
            return
        spec = SendSpec(
            channel=plan.channel, recipient_id=recipient.external_id, template_key=step["template"],
            variables=self.event.payload, priority=int(step.get("priority", self.event.priority)), category=category,
            scheduled_for=scheduled_for, fallback=tuple(plan.fallback),
            metadata={"event": self.event.name, "event_id": str(self.record.id), "cause_ref": self.event.cause_ref,
                      "rule_version": self.version.version, "step": step.get("name", index)},
        )
        key = idempotency_key(template=step["template"], version=version.version, recipient=recipient.external_id,
                              cause_ref=self.event.cause_ref or str(self.record.id),
                              step=index if step["template"] in self._repeated else None)
        try:
            with transaction.atomic():
                message, created = message_enqueue(tenant=self.tenant, spec=spec, idempotency_key=key, now=self.now)
        except errors.IdempotencyConflict as exc:
            plan.action, plan.message_id = "duplicate", exc.details.get("message_id", "")
            plan.reason += "; already produced (idempotency key)"
            return
        except errors.CommsError as exc:
            plan.action, plan.code, plan.reason = "error", exc.code, exc.message
            return
        plan.message_id = str(message.id)
        if not created:
            plan.action = "duplicate"
            plan.reason += "; already produced (idempotency key)"
            return
        if plan.escalation:
            Escalation.objects.get_or_create(message_id=message.id, defaults=dict(
                tenant=self.tenant, event=self.record, recipient=recipient,
                due_at=self.now + timedelta(seconds=escalation["after_seconds"]) if scheduled_for is None
                else scheduled_for + timedelta(seconds=escalation["after_seconds"]),
                channels=escalation["channels"], template_key=escalation.get("template", step["template"]),
                variables=self.event.payload, category=category, priority=spec.priority))

    def _step_audience(self, index: int, step: dict) -> None:
        """A segment audience: large ones go out through the COPY fan-out (preferences apply at send time)."""
        threshold = settings.COMMS_EVENT_BULK_THRESHOLD
        queryset = audience_queryset(tenant=self.tenant, audience=self.event.audience)
        size = queryset.count()
        if size == 0:  # stored with the event's outcome (and shown by the dry run), not silently nothing
            self.plans.append(Plan(index, "audience (0)", "error", code=errors.AudienceEmpty.code,
                                   reason="the audience matches no recipient; nothing was sent"))
            return
        if size <= threshold or step.get("digest") or step.get("escalation") or "when" in step:
            if size > threshold:
                self.plans.append(Plan(index, f"audience ({size})", "error", code=errors.AudienceInvalid.code,
                                       reason=f"only the first {threshold} recipients are routed one by one "
                                              "(digest, escalation and conditions need that); the rest were not"))
            for recipient in queryset.order_by("pk")[:threshold]:
                self._recipient(index, step, recipient)
            return
        plan = Plan(index, f"audience ({size})", "bulk", channel=step["channels"][0], template=step["template"],
                    reason="fan-out with COPY; preferences are applied per row at send time")
        self.plans.append(plan)
        if self.dry_run:
            return
        spec = SendSpec(channel=step["channels"][0], template_key=step["template"],
                        priority=int(step.get("priority", self.event.priority)),
                        category=step.get("category", self.event.category),
                        metadata={"event": self.event.name, "event_id": str(self.record.id)})
        for seq, chunk in enumerate(iter_chunks(queryset, 50_000)):
            result = message_bulk_enqueue(
                tenant=self.tenant, spec=spec, skip_invalid=True, now=self.now,
                idempotency_key=f"evt:{self.record.id}:s{index}:c{seq}",
                recipients=[{"recipient_id": ext, "variables": self.event.payload} for _, ext, _ in chunk])
            plan.message_id = plan.message_id or f"batch:{result.batch.id}"


def event_validate(event: EventInput) -> None:
    if not event.name:
        raise errors.ValidationFailed("name is required.", details={"field": "name"})
    if event.recipients and event.audience:
        raise errors.ValidationFailed("Give recipients or audience, not both.", details={"field": "audience"})
    if len(event.recipients) > MAX_RECIPIENTS:
        raise errors.ValidationFailed(f"At most {MAX_RECIPIENTS} recipients; use an audience for more.",
                                      details={"field": "recipients"})


def event_dry_run(*, tenant, event: EventInput, now: datetime | None = None,
                  version: RoutingRuleVersion | None = None) -> dict:
    """Which messages the event would produce, and why each recipient is allowed, deferred or blocked."""
    now = now or timezone.now()
    event_validate(event)
    version = version or rule_for(tenant=tenant, event_name=event.name)
    if version is None:
        return {"code": errors.NoRoute.code, "message": errors.NoRoute.default_message, "plans": []}
    result: dict[str, Any] = {"rule_version": version.version}
    dedupe = version.definition.get("dedupe")
    if dedupe:
        key = render_key(dedupe["key"], _context(event))
        result["dedupe_key"] = key
        if not _dedupe_open(tenant, key, dedupe.get("ttl_seconds", DEFAULT_DEDUPE_TTL), dry_run=True):
            result.update(code=errors.Deduplicated.code, plans=[])
            return result
    result["plans"] = [p.as_dict() for p in _Router(tenant=tenant, event=event, version=version, record=None,
                                                    now=now, dry_run=True).run()]
    return result


def _store(tenant, event: EventInput, now: datetime) -> tuple[Event, bool]:
    record = Event(tenant=tenant, name=event.name, cause_ref=event.cause_ref, actor=event.actor,
                   recipients=list(event.recipients), audience=event.audience, category=event.category,
                   priority=event.priority, payload=event.payload, created_at=now)
    if not event.cause_ref:
        record.save(force_insert=True)
        return record, True
    try:
        with transaction.atomic():
            record.save(force_insert=True)
        return record, True
    except IntegrityError:  # the same event again (maybe concurrently): the first one stands
        return Event.objects.get(tenant=tenant, name=event.name, cause_ref=event.cause_ref), False


def event_ingest(*, tenant, event: EventInput, now: datetime | None = None) -> tuple[Event, bool]:
    """Store and route one event in one transaction. Returns (event, created); a replay returns the first."""
    now = now or timezone.now()
    event_validate(event)
    if event.cause_ref:
        existing = Event.objects.filter(tenant=tenant, name=event.name, cause_ref=event.cause_ref).first()
        if existing is not None:
            return existing, False
    dedupe_held: str | None = None
    try:
        with transaction.atomic():
            record, created = _store(tenant, event, now)
            if not created:
                return record, False
            version = rule_for(tenant=tenant, event_name=event.name)
            if version is None:
                record.state = Event.State.NO_ROUTE
                record.save(update_fields=["state"])
                return record, True
            record.rule_version = version
            dedupe = version.definition.get("dedupe")
            if dedupe:
                key = render_key(dedupe["key"], _context(event))
                if not _dedupe_open(tenant, key, dedupe.get("ttl_seconds", DEFAULT_DEDUPE_TTL), dry_run=False):
                    record.state = Event.State.DUPLICATE
                    record.outcome = [{"code": errors.Deduplicated.code, "dedupe_key": key}]
                    record.save(update_fields=["state", "outcome", "rule_version"])
                    return record, True
                dedupe_held = key
            plans = _Router(tenant=tenant, event=event, version=version, record=record, now=now, dry_run=False).run()
            record.outcome = [p.as_dict() for p in plans]
            record.produced = sum(p.action in ("send", "digest", "bulk") for p in plans)
            if not record.produced and any(p.action == "error" for p in plans):
                record.state = Event.State.FAILED
            record.save(update_fields=["state", "outcome", "produced", "rule_version"])
            return record, True
    except BaseException:
        if dedupe_held:
            _dedupe_release(tenant, dedupe_held)
        raise

"""The rule step runner: one step for one recipient — channel fallback, the preference decision, digest
or send through ``delivery.services.message_enqueue`` (or the COPY fan-out for a segment audience).

Routing rules (``events.event_ingest``) and journeys' send steps (``journey_engine``) both run their
steps here: the router has one step engine. Every message carries an idempotency key: by default
(template, version, recipient, cause_ref); a journey passes its run + step key.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from comms import errors
from comms.campaigns.segments import audience_queryset, iter_chunks
from comms.models import Recipient
from comms.router.decisions import ALLOW, BLOCK, DEFER, DIGEST, decide
from comms.router.dedupe import idempotency_key
from comms.router.digests import DigestSpec, digest_add
from comms.router.models import Escalation, Event, RoutingRuleVersion
from comms.router.rules import condition_eval, render_key
from delivery import routing
from delivery.services import SendSpec, message_bulk_enqueue, message_enqueue
from delivery.services.enqueue import recipient_address_for
from templates_app import services as templates
from tracking.scores import best_channels

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
                 now: datetime, dry_run: bool, metadata: dict | None = None, idempotency: str = "",
                 cache: dict | None = None, probe: bool = True, not_before: datetime | None = None):
        self.tenant, self.event, self.version, self.record = tenant, event, version, record
        self.now, self.dry_run, self.not_before = now, dry_run, not_before
        self.metadata, self.idempotency, self.probe = metadata or {}, idempotency, probe
        self.cause = event.cause_ref or (str(record.id) if record is not None else "")
        self.plans: list[Plan] = []
        # template key → active version (or its error); a journey batch passes one dict for the whole
        # batch (one transaction), so each template is looked up once per batch, not once per run.
        self._versions: dict[str, Any] = {} if cache is None else cache.setdefault("template_versions", {})
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
        for channel in _channel_order(self.tenant.id, step, recipient):
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
        item_key = f"{self.record.id if self.record is not None else self.cause}:{plan.step}"
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
        best = self.not_before  # a journey's best hour; quiet hours' end wins if later
        if best is not None and best > self.now and (scheduled_for is None or best > scheduled_for):
            scheduled_for = best
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
            metadata=self.metadata or {"event": self.event.name, "event_id": str(self.record.id),
                                       "cause_ref": self.event.cause_ref, "rule_version": self.version.version,
                                       "step": step.get("name", index)},
        )
        key = self.idempotency or idempotency_key(
            template=step["template"], version=version.version, recipient=recipient.external_id,
            cause_ref=self.cause, step=index if step["template"] in self._repeated else None)
        try:
            with transaction.atomic():
                # The recipient, the version and this channel's decision (made above at the same `now`) are
                # handed over, so the enqueue neither re-loads nor decides a second time.
                message, created = message_enqueue(tenant=self.tenant, spec=spec, idempotency_key=key, now=self.now,
                                                   recipient=recipient, template_version=version, screened=True,
                                                   probe=self.probe)
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


def _channel_order(tenant_id: Any, step: dict, recipient: Recipient) -> list[str]:
    """The step's channels in the order they are tried: as listed, or with ``channel_order:
    "best_first"`` the channel the recipient engages on first (tracking.scores), the rest as listed."""
    channels = list(step["channels"])
    if step.get("channel_order") != "best_first":
        return channels
    best = best_channels(tenant_id=tenant_id, recipient_ids=[recipient.pk]).get(str(recipient.pk))
    return [best, *[c for c in channels if c != best]] if best in channels else channels


def step_send(*, tenant, recipient: Recipient, step: dict, variables: dict, idempotency: str, metadata: dict,
              category: str, priority: int, now: datetime, dry_run: bool, cache: dict | None = None,
              not_before: datetime | None = None) -> Plan:
    """Run one send step for one recipient with the rule step runner (channel fallback, the preference
    decision, quiet hours, digests, the one enqueue). Journeys' send steps come through here, so rules
    and journeys share one step engine; ``idempotency`` is the journey's run + step key; ``cache`` is
    kept by the caller across one batch (template versions); ``not_before`` schedules the message no
    earlier than that instant (a journey step's best hour)."""
    event = EventInput(name=str(metadata.get("journey", "")), recipients=(recipient.external_id,),
                       cause_ref=idempotency, category=category, priority=priority, payload=variables)
    router = _Router(tenant=tenant, event=event, version=RoutingRuleVersion(version=0, definition={"steps": [step]}),
                     record=None, now=now, dry_run=dry_run, metadata=metadata, idempotency=idempotency, cache=cache,
                     probe=False,  # a run + step key is new: its step row commits in the same transaction
                     not_before=not_before)
    router._recipient(0, step, recipient)
    return router.plans[0]


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
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.router.dedupe import dedupe_open as _dedupe_open
from comms.router.dedupe import dedupe_release as _dedupe_release
from comms.router.journeys import journeys_on_event
from comms.router.models import Event, RoutingRuleVersion
from comms.router.rules import DEFAULT_DEDUPE_TTL, render_key, rule_for
from comms.router.steps import MAX_RECIPIENTS, EventInput, Plan, _context, _Router, step_send

log = logging.getLogger(__name__)
__all__ = ["MAX_RECIPIENTS", "EventInput", "Plan", "event_dry_run", "event_ingest", "event_validate",
           "step_send"]



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
            # Journeys first: a goal ends a run before anything this event enters could send.
            journeyed = journeys_on_event(tenant=tenant, name=event.name, payload=event.payload,
                                          recipient_ids=list(event.recipients), event_id=str(record.id), now=now)
            version = rule_for(tenant=tenant, event_name=event.name)
            if version is None:
                record.state = Event.State.ROUTED if journeyed else Event.State.NO_ROUTE
                record.outcome = journeyed
                record.save(update_fields=["state", "outcome"])
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
            record.outcome = [p.as_dict() for p in plans] + journeyed
            record.produced = sum(p.action in ("send", "digest", "bulk") for p in plans)
            if not record.produced and any(p.action == "error" for p in plans):
                record.state = Event.State.FAILED
            record.save(update_fields=["state", "outcome", "produced", "rule_version"])
            return record, True
    except BaseException:
        if dedupe_held:
            _dedupe_release(tenant, dedupe_held)
        raise

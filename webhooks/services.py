"""Processing stored webhooks: normalise, hand each event to tracking, keep the row's state.

``webhook_process`` is idempotent: events already applied are duplicates by their provider event
id, so a row can be processed again (retry, sweep, admin re-process) without changing anything
twice. What a row means is its provider class's business (``registry.provider_for``): either
a side effect of its own (``act``) or normalised events handed to tracking (``normalise``).
Events for messages not yet marked sent (EC-COM-022) make the row 'retrying' with a
growing delay; after COMMS_WEBHOOK_ORPHAN_RETRIES it stays as an 'orphan' for inspection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from comms.audit import audit_record
from tracking.models import MessageEvent
from tracking.services import Outcome, event_ingest
from webhooks.intake import Malformed
from webhooks.models import WebhookEvent
from webhooks.registry import provider_for

log = logging.getLogger(__name__)


@dataclass
class ProcessResult:
    state: str
    outcomes: list[str] = field(default_factory=list)
    retry_in: float | None = None
    reply: str | None = None  # inbound SMS: the keyword's answer


def _retry_delay(attempt: int) -> float:
    schedule = settings.COMMS_WEBHOOK_ORPHAN_BACKOFF
    return float(schedule[min(attempt - 1, len(schedule) - 1)])


def webhook_process(*, webhook_id: int, force: bool = False) -> ProcessResult:
    """Process one stored request. Rows with an invalid signature are never processed."""
    with transaction.atomic():
        row = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=webhook_id).first()
        if row is None:
            return ProcessResult(state="busy")  # another worker holds it (or it is gone)
        if row.signature_valid is not True:
            return ProcessResult(state=row.state)
        if row.state == WebhookEvent.State.PROCESSED and not force:
            return ProcessResult(state=row.state)
        row.attempts += 1
        now = timezone.now()
        outcomes: list[str] = []
        state, note, reply = WebhookEvent.State.PROCESSED, "", None
        provider = provider_for(row.provider)
        try:
            handled = provider.act(row) if provider is not None else None
            if provider is None:
                state, note = WebhookEvent.State.FLAGGED, f"no parser for provider {row.provider!r}"
            elif handled is not None:
                state, note, reply = handled.state, handled.note, handled.reply
            else:
                events = provider.normalise(row)
                for event in events:
                    outcomes.append(event_ingest(event=event, webhook_id=row.pk).value)
                row.events_total = len(events)
                if Outcome.APPLIED.value in outcomes and row.message_id is None:
                    row.message_id = MessageEvent.objects.filter(webhook_id=row.pk).values_list(
                        "message_id", flat=True).first()
        except Malformed as exc:  # not the provider's format: retrying will not help (intake answers 400)
            row.state, row.unknown, row.error = WebhookEvent.State.MALFORMED, True, str(exc)[:2000]
            row.processed_at, row.next_attempt_at = now, None
            row.save()
            return ProcessResult(state=row.state)
        except Exception as exc:  # keep the row, say why, let the sweep or an admin try again
            log.exception("webhook #%s failed to process", row.pk)
            row.state, row.error, row.processed_at = WebhookEvent.State.FAILED, f"{type(exc).__name__}: {exc}"[:2000], now
            row.next_attempt_at = None
            row.save()
            return ProcessResult(state=row.state)
        row.events_applied = outcomes.count(Outcome.APPLIED.value)
        row.events_duplicate = outcomes.count(Outcome.DUPLICATE.value)
        row.events_orphan = outcomes.count(Outcome.ORPHAN.value)
        unknown = outcomes.count(Outcome.UNKNOWN.value)
        retry_in = None
        if unknown:
            row.unknown = True
            state, note = WebhookEvent.State.FLAGGED, f"{unknown} event(s) of unknown type kept for review"
        if row.events_orphan:
            if row.attempts <= settings.COMMS_WEBHOOK_ORPHAN_RETRIES:
                retry_in = _retry_delay(row.attempts)
                state = WebhookEvent.State.RETRYING
                note = f"{row.events_orphan} event(s) wait for their message to be sent"
            else:
                state = WebhookEvent.State.ORPHAN
                note = f"{row.events_orphan} event(s) never matched a sent message"
        row.state, row.error = state, note[:2000]
        row.processed_at = now
        row.next_attempt_at = now + timedelta(seconds=retry_in) if retry_in is not None else None
        row.save()
    return ProcessResult(state=state, outcomes=outcomes, retry_in=retry_in, reply=reply)


def webhook_reprocess(*, webhook_id: int, actor=None) -> ProcessResult:
    """Admin action: run a stored row through processing again (after a fix, or for an orphan)."""
    row = WebhookEvent.objects.get(pk=webhook_id)
    if row.signature_valid is not True:
        return ProcessResult(state=row.state)
    WebhookEvent.objects.filter(pk=webhook_id).update(attempts=0)
    result = webhook_process(webhook_id=webhook_id, force=True)
    audit_record(actor=actor, action="webhook.reprocessed", target=row, diff={"state": result.state})
    return result


def webhooks_sweep(*, limit: int = 500) -> int:
    """Process rows whose time has come: lost tasks, orphans due for another look (beat runs this)."""
    now = timezone.now()
    ids = list(WebhookEvent.objects.filter(
        state__in=[WebhookEvent.State.RECEIVED, WebhookEvent.State.RETRYING], next_attempt_at__lte=now,
        signature_valid=True).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for pk in ids:
        webhook_process(webhook_id=pk)
    return len(ids)


def webhooks_process_pending() -> int:
    """Everything received and not yet processed, now (tests and `manage.py` tools, like drain_all)."""
    done = 0
    for pk in WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED, signature_valid=True).order_by(
            "pk").values_list("pk", flat=True):
        webhook_process(webhook_id=pk)
        done += 1
    return done

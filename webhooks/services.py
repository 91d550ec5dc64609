"""Processing stored webhooks in batches: claim, normalise, hand the events to tracking as a set.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (so any number of workers share the backlog), and
everything one batch causes commits in one transaction: a worker killed mid-batch rolls it all back
and the rows are still ``received`` for the next claim. Processing is idempotent: events already
applied are duplicates by their provider event id, so a row can be processed again (retry, sweep,
admin re-process) without changing anything twice. What a row means is its provider class's
business (``registry.provider_for``): either a side effect of its own (``act``, one row at a time)
or normalised events, which ``tracking.services.events_apply`` applies for the whole batch at once.
A row whose events fail to apply (a poison payload) is isolated: the batch is re-applied one row at a
time and only that row ends ``failed`` with its error. Events for messages not yet marked sent
(EC-COM-022) make the row 'retrying' with a growing delay; after COMMS_WEBHOOK_ORPHAN_RETRIES it
stays as an 'orphan' for inspection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from comms.audit import audit_record
from tracking.normalised import NormalisedEvent
from tracking.services import Applied, Item, Outcome, events_apply
from webhooks.intake import IntakeView, Malformed
from webhooks.models import WebhookEvent
from webhooks.registry import provider_for

log = logging.getLogger(__name__)
State = WebhookEvent.State


@dataclass
class ProcessResult:
    state: str
    outcomes: list[str] = field(default_factory=list)
    retry_in: float | None = None
    reply: str | None = None  # inbound SMS: the keyword's answer


def _retry_delay(attempt: int) -> float:
    schedule = settings.COMMS_WEBHOOK_ORPHAN_BACKOFF
    return float(schedule[min(attempt - 1, len(schedule) - 1)])


def _claimable() -> QuerySet:
    return WebhookEvent.objects.select_for_update(skip_locked=True).filter(signature_valid=True)


def _due(now: datetime) -> Q:
    # A retry's task fires after its countdown, which can be a hair before next_attempt_at.
    return Q(state=State.RECEIVED) | Q(state=State.RETRYING, next_attempt_at__lte=now + timedelta(seconds=1))


_SAVE_SQL = """
UPDATE webhooks_webhookevent w
   SET state = v.state, attempts = v.attempts, events_total = v.total, events_applied = v.applied,
       events_duplicate = v.duplicate, events_orphan = v.orphan, unknown = v.unknown, error = v.error,
       message_id = v.message_id, processed_at = v.processed_at, next_attempt_at = v.next_attempt_at
  FROM json_to_recordset(%s::json)
       AS v(id bigint, state text, attempts int, total int, applied int, duplicate int, orphan int, unknown bool,
            error text, message_id uuid, processed_at timestamptz, next_attempt_at timestamptz)
 WHERE w.id = v.id
"""
_SAVED = {"id": "pk", "state": "state", "attempts": "attempts", "total": "events_total",
          "applied": "events_applied", "duplicate": "events_duplicate", "orphan": "events_orphan",
          "unknown": "unknown", "error": "error", "message_id": "message_id", "processed_at": "processed_at",
          "next_attempt_at": "next_attempt_at"}


def _save(rows: Sequence[WebhookEvent]) -> None:
    """Every processed row's bookkeeping in one statement."""
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(_SAVE_SQL, [json.dumps([{k: getattr(r, a) for k, a in _SAVED.items()} for r in rows],
                                                  default=str)])


def _settle(row: WebhookEvent, applied: list[Applied], now: datetime) -> ProcessResult:
    """The row's state from its events' outcomes (flagged, retrying/orphan, processed)."""
    outcomes = [a.outcome.value for a in applied]
    row.events_total = len(applied)
    row.events_applied = outcomes.count(Outcome.APPLIED.value)
    row.events_duplicate = outcomes.count(Outcome.DUPLICATE.value)
    row.events_orphan = outcomes.count(Outcome.ORPHAN.value)
    if row.message_id is None:
        row.message_id = next((a.message_id for a in applied if a.outcome == Outcome.APPLIED), None)
    unknown = outcomes.count(Outcome.UNKNOWN.value)
    state, note, retry_in = State.PROCESSED, "", None
    if unknown:
        row.unknown = True
        state, note = State.FLAGGED, f"{unknown} event(s) of unknown type kept for review"
    if row.events_orphan:
        if row.attempts <= settings.COMMS_WEBHOOK_ORPHAN_RETRIES:
            retry_in = _retry_delay(row.attempts)
            state, note = State.RETRYING, f"{row.events_orphan} event(s) wait for their message to be sent"
        else:
            state, note = State.ORPHAN, f"{row.events_orphan} event(s) never matched a sent message"
    row.state, row.error, row.processed_at = state, note[:2000], now
    row.next_attempt_at = now + timedelta(seconds=retry_in) if retry_in is not None else None
    return ProcessResult(state=state, outcomes=outcomes, retry_in=retry_in)


def _fail(row: WebhookEvent, exc: BaseException, now: datetime) -> ProcessResult:
    """Keep the row, say why; the admin's re-process runs it again after a fix."""
    if isinstance(exc, Malformed):  # not the provider's format: retrying will not help (intake answers 400)
        row.state, row.unknown, row.error = State.MALFORMED, True, str(exc)[:2000]
    else:
        row.state, row.error = State.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    row.processed_at, row.next_attempt_at = now, None
    return ProcessResult(state=row.state)


def _apply(parsed: list[tuple[WebhookEvent, list[NormalisedEvent]]],
           now: datetime) -> dict[int, list[Applied] | BaseException]:
    """All rows' events in one ``events_apply``; if that fails, each row alone, so a poison row fails
    by itself and the others still apply (each attempt in a savepoint: a failure leaves nothing)."""
    def run(part: list[tuple[WebhookEvent, list[NormalisedEvent]]]) -> dict[int, list[Applied]]:
        items = [Item(event, row.pk) for row, events in part for event in events]
        if not items:
            return {row.pk: [] for row, _events in part}
        with transaction.atomic():
            flat = iter(events_apply(items=items, now=now))
        return {row.pk: [next(flat) for _ in events] for row, events in part}

    try:
        return run(parsed)
    except Exception as exc:
        if len(parsed) == 1:
            log.exception("webhook #%s failed to process", parsed[0][0].pk)
            return {parsed[0][0].pk: exc}
        log.warning("a batch of %s webhooks failed (%s); applying them one by one", len(parsed), exc)
    out: dict[int, list[Applied] | BaseException] = {}
    for one in parsed:
        try:
            out.update(run([one]))
        except Exception as exc:
            log.exception("webhook #%s failed to process", one[0].pk)
            out[one[0].pk] = exc
    return out


def _process(rows: list[WebhookEvent], now: datetime) -> tuple[dict[int, ProcessResult], list[int]]:
    """Process claimed rows (inside the caller's transaction) until their events reach the batch size;
    returns the results and the ids of the rows left untouched for the next claim."""
    budget = max(1, settings.COMMS_WEBHOOK_BATCH_SIZE)
    results: dict[int, ProcessResult] = {}
    parsed: list[tuple[WebhookEvent, list[NormalisedEvent]]] = []
    done: list[WebhookEvent] = []
    left: list[int] = []
    events = 0
    for row in rows:
        if events >= budget:
            left.append(row.pk)
            continue
        row.attempts += 1
        done.append(row)
        provider = provider_for(row.provider)
        if provider is None:
            row.state, row.error, row.processed_at = State.FLAGGED, f"no parser for provider {row.provider!r}", now
            row.next_attempt_at = None
            results[row.pk] = ProcessResult(state=row.state)
            continue
        try:
            if provider.act.__func__ is not IntakeView.act.__func__:
                with transaction.atomic():  # its own side effects: undone alone if it fails
                    handled = provider.act(row)
                if handled is not None:
                    row.state, row.error, row.processed_at = handled.state, handled.note[:2000], now
                    row.next_attempt_at = None
                    results[row.pk] = ProcessResult(state=handled.state, reply=handled.reply)
                    continue
            normalised = provider.normalise(row)
        except Exception as exc:
            if not isinstance(exc, Malformed):
                log.exception("webhook #%s failed to process", row.pk)
            results[row.pk] = _fail(row, exc, now)
            continue
        parsed.append((row, normalised))
        events += len(normalised)
    applied = _apply(parsed, now) if parsed else {}
    for row, _events in parsed:
        got = applied[row.pk]
        results[row.pk] = _fail(row, got, now) if isinstance(got, BaseException) else _settle(row, got, now)
    _save(done)
    return results, left


def _run(claim: Callable[[datetime], list[WebhookEvent]]) -> dict[int, ProcessResult]:
    """Claim and process batches until a claim leaves nothing behind; one transaction per batch."""
    results: dict[int, ProcessResult] = {}
    while True:
        with transaction.atomic():
            now = timezone.now()
            rows = claim(now)
            got, left = _process(rows, now)
        results.update(got)
        if not left:
            return results


def webhooks_process_batch(*, ids: Sequence[int] = (), fill: bool = True) -> dict[int, ProcessResult]:
    """The task's path: the rows `ids` if they are due, plus (`fill`) other received rows up to
    COMMS_WEBHOOK_BATCH_SIZE, oldest first, skipping rows another worker holds. Returns {id: result}
    for the rows processed here (a row another worker held is simply not in it)."""
    size = max(1, settings.COMMS_WEBHOOK_BATCH_SIZE)
    wanted = list(ids)

    def claim(now: datetime) -> list[WebhookEvent]:
        rows = list(_claimable().filter(_due(now), pk__in=wanted).order_by("pk")) if wanted else []
        wanted.clear()  # the named rows are tried once; later rounds only fill
        if fill and len(rows) < size:
            rows += list(_claimable().filter(state=State.RECEIVED).exclude(pk__in=[r.pk for r in rows])
                         .order_by("pk")[:size - len(rows)])
        return rows

    return _run(claim)


def webhook_process(*, webhook_id: int, force: bool = False) -> ProcessResult:
    """Process one stored row now, whatever its state (tests, the admin, Twilio's inline reply).
    Rows with an invalid signature are never processed; processed rows only with `force`."""
    with transaction.atomic():
        row = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=webhook_id).first()
        if row is None:
            return ProcessResult(state="busy")  # another worker holds it (or it is gone)
        if row.signature_valid is not True or (row.state == State.PROCESSED and not force):
            return ProcessResult(state=row.state)
        now = timezone.now()
        results, _left = _process([row], now)
    return results[webhook_id]


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
    def claim(now: datetime) -> list[WebhookEvent]:
        return list(_claimable().filter(state__in=[State.RECEIVED, State.RETRYING], next_attempt_at__lte=now)
                    .order_by("next_attempt_at", "pk")[:max(1, min(limit, settings.COMMS_WEBHOOK_BATCH_SIZE))])

    return len(_run(claim))


def webhooks_process_pending() -> int:
    """Everything received and not yet processed, now (tests and `manage.py` tools, like drain_all)."""
    def claim(now: datetime) -> list[WebhookEvent]:
        return list(_claimable().filter(state=State.RECEIVED).order_by("pk")[:max(1, settings.COMMS_WEBHOOK_BATCH_SIZE)])

    done = 0
    while True:
        got = _run(claim)
        if not got:
            return done
        done += len(got)

"""The delivery engine: claim a batch, hand it to providers, record every outcome.

Safety model
* A claim is one statement (``UPDATE … WHERE id = ANY(SELECT … FOR UPDATE SKIP LOCKED)``) that
  flips rows to 'sending' with a lease: concurrent workers never claim the same row.
* Each outcome is written the moment the provider answers, fenced by the lease owner, in one round
  trip (status update + DeliveryLog insert in one CTE). A worker killed mid-batch therefore loses
  at most the message in flight; its unsent rows come back when the lease expires.
* Claims probe priority levels in order, each through an exact index range, so a P3 drain takes
  any waiting P0 row first and a P3 backlog never slows a P0 claim.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import uuid
import weakref
from contextlib import ExitStack
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.module_loading import import_string

from comms.enums import LogEvent, Status
from delivery import health, ratelimit, routing, wakeup
from delivery.models import Message, MessageBatch
from delivery.providers.base import Content, SendResult
from delivery.services.content import Unrenderable, content_for
from delivery.services.enqueue import message_fallback, message_follow_up
from delivery.services import screening

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

_CLAIM_SQL = """
UPDATE delivery_message AS m
   SET status = 'sending', lease_owner = %(owner)s, lease_expires_at = %(lease_until)s,
       attempt_count = m.attempt_count + 1, updated_at = %(now)s
 WHERE m.id = ANY(ARRAY(
         SELECT id FROM delivery_message
          WHERE status = 'queued' AND priority = %(priority)s AND next_attempt_at <= %(now)s
          ORDER BY next_attempt_at, id
          LIMIT %(limit)s
          FOR UPDATE SKIP LOCKED))
RETURNING m.*
"""

_OUTCOME_SQL = """
WITH u AS (
  UPDATE delivery_message
     SET status = %(status)s, next_attempt_at = COALESCE(%(next_at)s, next_attempt_at),
         sent_at = COALESCE(%(sent_at)s, sent_at), failed_at = COALESCE(%(failed_at)s, failed_at),
         provider = %(provider)s, provider_ref = COALESCE(NULLIF(%(ref)s, ''), provider_ref),
         variant = COALESCE(NULLIF(%(variant)s, ''), variant), artifact = COALESCE(NULLIF(%(artifact)s, ''), artifact),
         failure_code = %(fcode)s, failure_reason = %(freason)s,
         attempt_count = attempt_count + %(attempt_delta)s,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
   WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'sending'
  RETURNING id, attempt_count)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, %(event)s, %(now)s, attempt_count, %(provider)s, '', %(code)s, %(detail)s, %(data)s::jsonb FROM u
RETURNING message_id
"""

_EXTEND_SQL = """
UPDATE delivery_message SET lease_expires_at = %(until)s
 WHERE id = ANY(%(ids)s) AND lease_owner = %(owner)s AND status = 'sending'
"""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def policy(priority: int) -> dict:
    return settings.COMMS_PRIORITIES[int(priority)]


def max_attempts(priority: int) -> int:
    return len(policy(priority)["backoff"]) + 1


def next_retry_at(*, priority: int, attempt: int, origin: datetime, now: datetime) -> datetime | None:
    """When attempt `attempt` failed transiently: the next try, or None when the budget is spent.

    The schedule is the priority's backoff list (default 1 min, 5 min, 30 min, 2 h) with ±10 %
    jitter so a provider outage does not come back as one thundering herd; no retry is planned
    past the priority's max age.
    """
    p = policy(priority)
    if attempt > len(p["backoff"]):
        return None
    delay = p["backoff"][attempt - 1] * random.uniform(0.9, 1.1)
    at = now + timedelta(seconds=delay)
    if at > origin + timedelta(seconds=p["max_age"]):
        return None
    return at


@dataclass
class DrainStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    lost_lease: int = 0
    deferred: int = 0
    batches: int = 0
    blocked: int = 0


def claim_batch(*, max_priority: int, limit: int, owner: str, now: datetime | None = None) -> list[Message]:
    """Claim up to `limit` due rows, highest priority first; each claim commits on its own."""
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=settings.COMMS_LEASE_SECONDS)
    claimed: list[Message] = []
    for priority in range(0, max_priority + 1):
        need = limit - len(claimed)
        if need <= 0:
            break
        rows = list(Message.objects.raw(_CLAIM_SQL, {
            "owner": owner, "lease_until": lease_until, "now": now, "priority": priority, "limit": need,
        }))
        rows.sort(key=lambda m: (m.next_attempt_at, m.id))  # the order housekeeping's crash accounting assumes
        claimed.extend(rows)
    return claimed


def _record(message: Message, *, owner: str, now: datetime, status: str, event: str, result: SendResult,
            provider: str, next_at: datetime | None = None, attempt_delta: int = 0) -> bool:
    """Write one outcome (status + log row) fenced by the lease; False when the lease was lost."""
    terminal_fail = status in (Status.FAILED, Status.DEAD)
    params = {
        "status": status, "next_at": next_at, "sent_at": now if result.ok else None,
        "failed_at": now if terminal_fail else None, "provider": provider, "ref": result.provider_ref,
        "fcode": "" if result.ok else result.code, "freason": "" if result.ok else result.detail[:2000],
        "now": now, "id": message.id, "owner": owner, "event": event, "code": result.code,
        "variant": message.variant, "artifact": message.artifact, "attempt_delta": attempt_delta,
        "detail": result.detail[:2000], "data": json.dumps({**result.data, **({"error_class": result.error_class} if not result.ok else {})}),
    }
    written = _write_outcome(params)
    if not written:
        log.warning("lease lost for message %s before its outcome was recorded", message.id)
    return written


def _write_outcome(params: dict) -> bool:
    """Run the fenced outcome write, riding out a database blip for most of a lease.

    The provider already has the message: giving up here means the lease expires and the message
    is sent again. So a lost connection is retried (on a fresh one) for up to 80 % of a lease;
    the lease-owner fence makes a write that comes too late a no-op, never a double outcome.
    """
    deadline = time.monotonic() + settings.COMMS_LEASE_SECONDS * 0.8
    retries = 0
    while True:
        try:
            with connection.cursor() as cursor:
                cursor.execute(_OUTCOME_SQL, params)
                written = cursor.fetchone() is not None
            if retries:
                log.warning("outcome of %s recorded after %d retries", params["id"], retries)
            return written
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() > deadline:
                raise
            if not retries:
                log.warning("database unreachable while recording the outcome of %s; retrying", params["id"])
            retries += 1
            connection.close()
            time.sleep(0.5)


def defer(message: Message, *, owner: str, now: datetime, seconds: float, reason: str, stats: DrainStats) -> None:
    """Back to the queue for later without spending an attempt (a rate limit is not a failure)."""
    at = now + timedelta(seconds=seconds + random.uniform(0, min(1.0, seconds / 10 + 0.01)))
    ok = _record(message, owner=owner, now=now, status=Status.QUEUED, event=LogEvent.DEFERRED,
                 result=SendResult.transient("throttled", reason), provider="", next_at=at, attempt_delta=-1)
    stats.deferred += ok


def record_outcome(message: Message, result: SendResult, *, owner: str, provider: str, now: datetime,
                   stats: DrainStats) -> None:
    """sent, failed (permanent), queued again (transient, within budget) or dead (budget spent)."""
    next_at = None
    if result.ok:
        status, event, counter = Status.SENT, LogEvent.SENT, "sent"
    elif result.error_class == "permanent":
        status, event, counter = Status.FAILED, LogEvent.FAILED, "failed"
    else:
        origin = message.scheduled_for or message.created_at
        next_at = next_retry_at(priority=message.priority, attempt=message.attempt_count, origin=origin, now=now)
        status, event, counter = ((Status.QUEUED, LogEvent.RETRYING, "retried") if next_at
                                  else (Status.DEAD, LogEvent.DEAD, "dead"))
    ok = _record(message, owner=owner, now=now, status=status, event=event, result=result, provider=provider,
                 next_at=next_at)
    setattr(stats, counter, getattr(stats, counter) + ok)
    stats.lost_lease += not ok
    if ok and status in (Status.FAILED, Status.DEAD) and message.fallback_channels:
        message_fallback(message=message)
    if ok and status == Status.SENT and result.retry_addresses:
        at = next_retry_at(priority=message.priority, attempt=1, origin=now, now=now)
        message_follow_up(message=message, addresses=result.retry_addresses, at=at)


# Failures that say the provider itself is in trouble (as opposed to one mailbox being busy, e.g. an
# SMTP 450/451 at RCPT): these feed the circuit breaker.
_PROVIDER_FAULTS = {"connect", "network", "disconnected", "provider_error", "401", "403", "421", "429", "redirects"}


def _provider_fault(result: SendResult) -> bool:
    return result.error_class == "transient" and (result.code in _PROVIDER_FAULTS or result.code[:1] == "5")


class _Deferred(Exception):
    def __init__(self, wait: float, reason: str):
        self.wait, self.reason = wait, reason


def _send_with_failover(m: Message, content: Content, chain: list[routing.Spec], entered: ExitStack,
                        opened: dict) -> tuple[SendResult, str]:
    """Try the channel's providers in order, skipping open circuits.

    A transient failure moves on to the next provider only when the failed one certainly did not
    take the message (``maybe_accepted`` is false): failover never sends twice. A rate limit that
    says "wait" defers the message instead of failing it; a provider whose daily quota is spent is
    skipped, and when every one is, the message waits for the first quota to renew.
    """
    result, used = None, ""
    quota_waits: list[float] = []
    for spec in chain:
        if not health.allow(spec.name):
            continue
        decision = ratelimit.acquire(ratelimit.limits_for(provider_name=spec.name, provider_rate=spec.rate,
                                                          channel=m.channel, address=m.recipient_address))
        if not decision.allowed:
            raise _Deferred(decision.wait_seconds, f"rate limit ({spec.name})")
        quota_wait = ratelimit.daily_take(spec.name, spec.daily)
        if quota_wait:  # this provider's daily quota is spent: the next one may still send today
            quota_waits.append(quota_wait)
            continue
        provider = opened.get(spec.name)
        if provider is None:
            provider = opened[spec.name] = entered.enter_context(routing.instance(spec))
        started = time.monotonic()
        try:
            result = provider.send(m, content)
        except Exception as exc:  # a provider bug must not strand the rest of the batch
            log.exception("provider %s raised for message %s", spec.name, m.id)
            result = SendResult.transient("provider_error", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        used = spec.name
        health.record(spec.name, healthy=not _provider_fault(result), latency_ms=(time.monotonic() - started) * 1000,
                      code=result.code)
        if result.ok or result.error_class == "permanent" or result.maybe_accepted:
            break
    if result is None:
        if quota_waits:
            raise _Deferred(min(quota_waits), "daily quota of every available provider spent")
        # Every circuit is open: wait out the cooldown without spending an attempt (found by the chaos
        # battery, R4: with a short retry schedule, messages died while their only provider cooled down).
        raise _Deferred(settings.COMMS_BREAKER_COOLDOWN, "every provider's circuit is open")
    return result, used


def deliver_batch(messages: list[Message], *, owner: str, clock: Clock = timezone.now,
                  stats: DrainStats | None = None) -> DrainStats:
    """Send claimed rows; each provider session is opened once and kept (see providers.base)."""
    stats = stats or DrainStats()
    batch_ids = {m.batch_id for m in messages if m.batch_id}
    batches = MessageBatch.objects.select_related("template_version__template").in_bulk(batch_ids) if batch_ids else {}
    if any(b.template_version_id for b in batches.values()):
        prefetch_related_objects(messages, "recipient")  # locale/timezone/bucketing, in one query
    half_lease = settings.COMMS_LEASE_SECONDS / 2
    extend_at = time.monotonic() + half_lease
    pending = {m.id for m in messages}
    opened: dict[str, Any] = {}
    held = screening.screen(messages, now=clock())  # preferences, consent, suppression, quiet hours
    # Click/open tracking and UTM for email HTML: tracking's (it sits above delivery), so named in settings.
    tracker = import_string(settings.COMMS_LINK_TRACKER)(messages)
    with ExitStack() as entered:
        for m in messages:
            if time.monotonic() > extend_at:  # slow provider: keep the lease on what is left
                with connection.cursor() as cursor:
                    cursor.execute(_EXTEND_SQL, {"until": clock() + timedelta(seconds=settings.COMMS_LEASE_SECONDS),
                                                 "ids": list(pending), "owner": owner})
                extend_at = time.monotonic() + half_lease
            if m.id in held and screening.hold(m, held[m.id], owner=owner, now=clock(), stats=stats):
                pending.discard(m.id)
                continue
            chain = routing.provider_specs(tenant_id=m.tenant_id, channel=m.channel, category=m.category)
            try:
                if not chain:
                    result, used = SendResult.transient("COMMS_CHANNEL_UNAVAILABLE", f"no provider for {m.channel}"), ""
                else:
                    result, used = _send_with_failover(m, tracker.apply(m, content_for(m, batches)), chain, entered,
                                                      opened)
            except Unrenderable as exc:
                result, used = SendResult.permanent(exc.error.code, exc.error.message), ""
            except _Deferred as wait:
                defer(m, owner=owner, now=clock(), seconds=wait.wait, reason=wait.reason, stats=stats)
                pending.discard(m.id)
                continue
            record_outcome(m, result, owner=owner, provider=used, now=clock(), stats=stats)
            pending.discard(m.id)
    health.flush()
    return stats


_async_commit_sessions: "weakref.WeakSet" = weakref.WeakSet()


def _outcome_durability() -> None:
    """Once per database session: outcome writes skip the WAL flush wait (see settings)."""
    if settings.COMMS_OUTCOME_SYNC_COMMIT:
        return
    connection.ensure_connection()
    raw = connection.connection
    if raw not in _async_commit_sessions:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        _async_commit_sessions.add(raw)


def drain(*, priority: int, owner: str | None = None, budget_seconds: float | None = None,
          clock: Clock = timezone.now, max_batches: int | None = None) -> DrainStats:
    """Claim and deliver batches for `priority` (and anything more urgent) until none is due.

    Runs for at most `budget_seconds`, then hands over to a fresh wake-up so one long backlog
    cannot pin a worker process forever.
    """
    owner = owner or worker_id()
    budget = settings.COMMS_DRAIN_SECONDS if budget_seconds is None else budget_seconds
    limit = policy(priority)["batch"]
    stats = DrainStats()
    wakeup.clear(priority)
    _outcome_durability()
    deadline = time.monotonic() + budget
    while True:
        if time.monotonic() > deadline or (max_batches is not None and stats.batches >= max_batches):
            wakeup.wake(priority)
            break
        batch = claim_batch(max_priority=priority, limit=limit, owner=owner, now=clock())
        if not batch:
            break
        stats.batches += 1
        stats.claimed += len(batch)
        if len(batch) == limit:
            wakeup.wake(priority)  # more is waiting: let an idle process in the pool help
        deliver_batch(batch, owner=owner, clock=clock, stats=stats)
    return stats


def drain_all(*, clock: Clock = timezone.now, owner: str | None = None) -> DrainStats:
    """Drain every priority in this process (tests, `manage.py` tools); P0 first as always."""
    total = DrainStats()
    for priority in range(5):
        stats = drain(priority=priority, owner=owner, budget_seconds=3600, clock=clock)
        for name in ("claimed", "sent", "retried", "failed", "dead", "lost_lease", "deferred", "batches", "blocked"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
    return total

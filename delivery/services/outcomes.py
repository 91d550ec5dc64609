"""Claims and outcomes: the two kinds of database write the delivery engine makes.

* A claim is one statement (``UPDATE … WHERE id = ANY(SELECT … FOR UPDATE SKIP LOCKED)``) that
  flips rows to 'sending' with a lease: concurrent workers never claim the same row.
* Each outcome is written the moment the provider answers, fenced by the lease owner, in one round
  trip (status update + DeliveryLog insert in one CTE), always on the worker's own thread (the
  sending threads of delivery.services.inflight never touch the database).
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from comms import quotas
from comms.enums import LogEvent, Status
from delivery.costs import recording as cost_recording
from delivery.latency import recording as latency_recording
from delivery.models import Message
from delivery.providers.base import SendResult
from delivery.services import fairness
from delivery.services.follow_ups import message_fallback, message_follow_up

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

# Outcome writes commit without waiting for the WAL flush unless COMMS_OUTCOME_SYNC_COMMIT
# (docs/operations.md). The setting is made inside the statement with set_config(…, is_local => true),
# so it ends with the statement's own transaction: a session-wide `SET synchronous_commit` would, behind
# PgBouncer in transaction pooling mode, stay on whichever server connection ran it and then apply to
# other clients' transactions (an API insert whose 202 promises the row is on disk) instead of ours.
_ASYNC_COMMIT_CTE = "_c AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)), "

_OUTCOME_SQL = """
WITH {async_cte}u AS (
  UPDATE delivery_message
     SET status = %(status)s, next_attempt_at = COALESCE(%(next_at)s, next_attempt_at),
         sent_at = COALESCE(%(sent_at)s, sent_at), failed_at = COALESCE(%(failed_at)s, failed_at),
         provider = %(provider)s, provider_ref = COALESCE(NULLIF(%(ref)s, ''), provider_ref),
         variant = COALESCE(NULLIF(%(variant)s, ''), variant), artifact = COALESCE(NULLIF(%(artifact)s, ''), artifact),
         template_version_id = COALESCE(%(version)s, template_version_id),
         failure_code = %(fcode)s, failure_reason = %(freason)s,
         attempt_count = attempt_count + %(attempt_delta)s,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
   WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'sending'
  RETURNING id, attempt_count)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, %(event)s, %(now)s, attempt_count, %(provider)s, '', %(code)s, %(detail)s, %(data)s::jsonb FROM u{async_join}
RETURNING message_id
"""

# The same write for many outcomes at once (rows: a JSON array of Outcome.params()).
_OUTCOMES_SQL = """
WITH {async_cte}v AS (
  SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(
    id uuid, status text, next_at timestamptz, sent_at timestamptz, failed_at timestamptz, provider text,
    ref text, variant text, artifact text, version bigint, fcode text, freason text, attempt_delta int, now timestamptz,
    event text, code text, detail text, data jsonb)
), u AS (
  UPDATE delivery_message AS m
     SET status = v.status, next_attempt_at = COALESCE(v.next_at, m.next_attempt_at),
         sent_at = COALESCE(v.sent_at, m.sent_at), failed_at = COALESCE(v.failed_at, m.failed_at),
         provider = v.provider, provider_ref = COALESCE(NULLIF(v.ref, ''), m.provider_ref),
         variant = COALESCE(NULLIF(v.variant, ''), m.variant), artifact = COALESCE(NULLIF(v.artifact, ''), m.artifact),
         template_version_id = COALESCE(v.version, m.template_version_id),
         failure_code = v.fcode, failure_reason = v.freason, attempt_count = m.attempt_count + v.attempt_delta,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = v.now
    FROM v
   WHERE m.id = v.id AND m.lease_owner = %(owner)s AND m.status = 'sending'
  RETURNING m.id, m.attempt_count, v.event, v.now, v.provider, v.code, v.detail, v.data)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, event, now, attempt_count, provider, '', code, detail, data FROM u{async_join}
RETURNING message_id
"""



def _durability(sql: str) -> dict[bool, str]:
    """The statement keyed by COMMS_OUTCOME_SYNC_COMMIT: as written, or with the per-transaction async commit."""
    return {True: sql.format(async_cte="", async_join=""),
            False: sql.format(async_cte=_ASYNC_COMMIT_CTE, async_join=", _c")}


_OUTCOME_SQLS, _OUTCOMES_SQLS = _durability(_OUTCOME_SQL), _durability(_OUTCOMES_SQL)

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
        # Shared across the tenants with due work at this priority (delivery.services.fairness), then
        # the rest of the batch filled oldest first, so no slot is left idle.
        fair = fairness.claim_fair(priority=priority, limit=need, owner=owner, now=now, lease_until=lease_until,
                                   weight=quotas.weight) or []
        rows = list(Message.objects.raw(_CLAIM_SQL, {
            "owner": owner, "lease_until": lease_until, "now": now, "priority": priority, "limit": need - len(fair),
        })) if len(fair) < need else []
        rows.sort(key=lambda m: (m.next_attempt_at, m.id))  # the order housekeeping's crash accounting assumes
        claimed.extend(fair + rows)  # the fair share first, round-robin across tenants (fairness.interleave)
    return claimed


@dataclass
class Outcome:
    """Where one claimed row ends up after this attempt (written by ``record_many``)."""

    message: Message
    status: str
    event: str
    result: SendResult
    provider: str
    now: datetime
    next_at: datetime | None = None
    attempt_delta: int = 0
    counter: str = ""  # the DrainStats counter a written outcome adds to
    counts_lost: bool = True  # a lost lease is counted in DrainStats.lost_lease
    cost: Any = None  # delivery.costs.prices.Cost of a sent row whose provider has a price
    provider_ms: float | None = None  # the provider call that decided it, when the engine timed one
    sent_body: str | None = None  # the text the provider got (a bulk row's render, SMS footer): priced

    def params(self) -> dict:
        result, now = self.result, self.now
        return {
            "id": self.message.id, "status": self.status, "next_at": self.next_at,
            "sent_at": now if result.ok else None,
            "failed_at": now if self.status in (Status.FAILED, Status.DEAD) else None,
            "provider": self.provider, "ref": result.provider_ref,
            "fcode": "" if result.ok else result.code, "freason": "" if result.ok else result.detail[:2000],
            "now": now, "event": self.event, "code": result.code,
            "variant": self.message.variant, "artifact": self.message.artifact, "attempt_delta": self.attempt_delta,
            "version": self.message.template_version_id,  # a staged rollout's split of a bulk row (content.py)
            "detail": result.detail[:2000],
            "data": {**result.data, **({"error_class": result.error_class} if not result.ok else {}),
                     **cost_recording.cost_data(self.cost)},
        }


def _json(value: object) -> str:
    """datetimes in full (isoformat keeps the microseconds), UUIDs as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def outcome_of(message: Message, result: SendResult, *, provider: str, now: datetime) -> Outcome:
    """sent, failed (permanent), queued again (transient, within budget) or dead (budget spent)."""
    if result.ok:
        return Outcome(message, Status.SENT, LogEvent.SENT, result, provider, now, counter="sent")
    if result.error_class == "permanent":
        return Outcome(message, Status.FAILED, LogEvent.FAILED, result, provider, now, counter="failed")
    origin = message.scheduled_for or message.created_at
    next_at = next_retry_at(priority=message.priority, attempt=message.attempt_count, origin=origin, now=now)
    if next_at:
        return Outcome(message, Status.QUEUED, LogEvent.RETRYING, result, provider, now, next_at, counter="retried")
    return Outcome(message, Status.DEAD, LogEvent.DEAD, result, provider, now, counter="dead")


def deferral(message: Message, *, now: datetime, seconds: float, reason: str) -> Outcome:
    """Back to the queue for later without spending an attempt (a rate limit is not a failure)."""
    at = now + timedelta(seconds=seconds + random.uniform(0, min(1.0, seconds / 10 + 0.01)))
    return Outcome(message, Status.QUEUED, LogEvent.DEFERRED, SendResult.transient("throttled", reason), "", now,
                   next_at=at, attempt_delta=-1, counter="deferred", counts_lost=False)


def record_many(outcomes: list[Outcome], *, owner: str, stats: DrainStats) -> None:
    """Write outcomes fenced by the lease: one round trip however many answers arrived together (the
    engine collects what its sending threads returned since it last looked), then each written row's
    fallback or follow-up."""
    if not outcomes:
        return
    cost_recording.price_outcomes(outcomes)  # the price of each sent row, from a cached table
    rows = [o.params() for o in outcomes]
    sync = bool(settings.COMMS_OUTCOME_SYNC_COMMIT)
    if len(rows) == 1:
        params = {**rows[0], "owner": owner, "data": json.dumps(rows[0]["data"])}
        written = set(_write_outcome(_OUTCOME_SQLS[sync], params, rows[0]["id"]))
    else:
        written = set(_write_outcome(_OUTCOMES_SQLS[sync], {"rows": json.dumps(rows, default=_json), "owner": owner},
                                     f"{len(rows)} messages"))
    priced = [o for o in outcomes if o.cost is not None and str(o.message.id) in written]
    if priced:
        cost_recording.rollup(priced)
    latency_recording.rollup([o for o in outcomes if str(o.message.id) in written])  # delivery.latency
    for o in outcomes:
        ok = str(o.message.id) in written
        if not ok:
            log.warning("lease lost for message %s before its outcome was recorded", o.message.id)
        if o.counter:
            setattr(stats, o.counter, getattr(stats, o.counter) + ok)
        if o.counts_lost:
            stats.lost_lease += not ok
        if ok and o.status in (Status.FAILED, Status.DEAD) and o.message.fallback_channels:
            message_fallback(message=o.message)
        if ok and o.status == Status.SENT and o.result.retry_addresses:
            at = next_retry_at(priority=o.message.priority, attempt=1, origin=o.now, now=o.now)
            message_follow_up(message=o.message, addresses=o.result.retry_addresses, at=at)


def _record(message: Message, *, owner: str, now: datetime, status: str, event: str, result: SendResult,
            provider: str, next_at: datetime | None = None, attempt_delta: int = 0) -> bool:
    """Write one outcome (status + log row) fenced by the lease; False when the lease was lost."""
    stats = DrainStats()
    record_many([Outcome(message, status, event, result, provider, now, next_at, attempt_delta, counter="sent")],
                owner=owner, stats=stats)
    return bool(stats.sent)


def _write_outcome(sql: str, params: dict, what: str) -> list[str]:
    """Run a fenced outcome write (the ids it wrote), riding out a database blip for most of a lease.

    The provider already has the message: giving up here means the lease expires and the message
    is sent again. So a lost connection is retried (on a fresh one) for up to 80 % of a lease;
    the lease-owner fence makes a write that comes too late a no-op, never a double outcome.
    """
    deadline = time.monotonic() + settings.COMMS_LEASE_SECONDS * 0.8
    retries = 0
    while True:
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                written = [str(row[0]) for row in cursor.fetchall()]
            if retries:
                log.warning("outcome of %s recorded after %d retries", what, retries)
            return written
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() > deadline:
                raise
            if not retries:
                log.warning("database unreachable while recording the outcome of %s; retrying", what)
            retries += 1
            connection.close()
            time.sleep(0.5)


def defer(message: Message, *, owner: str, now: datetime, seconds: float, reason: str, stats: DrainStats) -> None:
    """Back to the queue for later without spending an attempt (a rate limit is not a failure)."""
    record_many([deferral(message, now=now, seconds=seconds, reason=reason)], owner=owner, stats=stats)


def record_outcome(message: Message, result: SendResult, *, owner: str, provider: str, now: datetime,
                   stats: DrainStats) -> None:
    """sent, failed (permanent), queued again (transient, within budget) or dead (budget spent)."""
    record_many([outcome_of(message, result, provider=provider, now=now)], owner=owner, stats=stats)


def leases_extend(ids: list, *, owner: str, until: datetime) -> None:
    """Keep the lease on rows still waiting for (or in) a provider call: a slow provider must not let
    housekeeping hand them to another worker while this one is about to send them."""
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_EXTEND_SQL, {"until": until, "ids": ids, "owner": owner})

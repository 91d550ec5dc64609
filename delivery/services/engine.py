"""The delivery engine: claim a batch, hand it to providers, record every outcome.

Safety model
* Claims and outcome writes are in delivery.services.outcomes: a claim leases its rows; each outcome
  is written the moment its provider answers, fenced by the lease owner.
* Many sends are in flight at once (delivery.services.inflight): a worker killed mid-batch loses at
  most the sends it had in flight (≤ COMMS_SEND_CONCURRENCY); its other rows come back when the
  lease expires. Leases are extended while sends are in flight.
* Everything but the provider call runs on the worker's thread, in claim order: screening, rendering,
  the channel policy (delivery.channels: before the first vendor and after each answer), breaker
  state, rate limits and quotas, failover decisions, outcome writes, fallbacks, follow-ups.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.module_loading import import_string

from delivery import channels, health, ratelimit, routing, wakeup
from delivery.costs import envelopes
from delivery.deliverability import pools, spam, warmup
from delivery.models import Message, MessageBatch
from delivery.providers.base import Content, Provider, SendResult
from delivery.services import inflight, quota_gate, screening
from delivery.services.content import Unrenderable, batch_splits, content_for
from delivery.services.follow_ups import message_shares_enqueue
from delivery.services.outcomes import (  # noqa: F401  (re-exported: the engine's public names)
    Clock, DrainStats, Outcome, _record, claim_batch, defer, deferral, leases_extend, max_attempts, next_retry_at,
    outcome_of, policy, record_many, record_outcome, worker_id,
)

log = logging.getLogger(__name__)

# Failures that say the provider itself is in trouble (as opposed to one mailbox being busy, e.g. an
# SMTP 450/451 at RCPT): these feed the circuit breaker.
_PROVIDER_FAULTS = {"connect", "network", "disconnected", "provider_error", "401", "403", "421", "429", "redirects"}


def _provider_fault(result: SendResult) -> bool:
    return result.error_class == "transient" and (result.code in _PROVIDER_FAULTS or result.code[:1] == "5")


@dataclass
class _Attempt:
    """One message on its way down its channel's provider chain."""

    message: Message
    content: Content
    chain: list[routing.Spec]
    index: int = 0
    result: SendResult | None = None
    used: str = ""
    latency_ms: float | None = None  # of the provider call that gave `result`
    quota_waits: list[float] = field(default_factory=list)


class _Delivery:
    """The claimed rows of one drain (or one deliver_batch call) on their way to the providers.

    Provider instances are entered once per drain, so a configuration change applies from the next
    drain (at most COMMS_DRAIN_SECONDS later).

    Providers are tried in order, skipping open circuits. A transient failure moves on to the next
    provider only when the failed one certainly did not take the message (``maybe_accepted`` is
    false): failover never sends twice. A rate limit that says "wait" defers the message instead of
    failing it; a provider whose daily quota is spent is skipped, and when every one is, the message
    waits for the first quota to renew. A provider whose slots are all taken parks its messages
    (rate limits are taken only when a slot is free, so a parked backlog never bursts), while
    messages for other providers keep going.
    """

    def __init__(self, *, owner: str, clock: Clock, stats: DrainStats, entered: ExitStack, pending: set):
        self.owner, self.clock, self.stats, self.entered, self.pending = owner, clock, stats, entered, pending
        self.flight = inflight.Flight()
        self.parked: dict[str, deque[_Attempt]] = {}
        self.opened: dict[str, Provider] = {}
        self.outbox: list[Outcome] = []  # answered, not yet written: written together by flush()
        self.half_lease = settings.COMMS_LEASE_SECONDS / 2
        self.extend_at = time.monotonic() + self.half_lease

    # -- bookkeeping ------------------------------------------------------------------------------------
    def keep_leases(self) -> None:
        if time.monotonic() > self.extend_at:  # slow providers: keep the lease on what is left
            leases_extend(list(self.pending), owner=self.owner,
                          until=self.clock() + timedelta(seconds=settings.COMMS_LEASE_SECONDS))
            self.extend_at = time.monotonic() + self.half_lease

    def provider(self, spec: routing.Spec) -> Provider:
        provider = self.opened.get(spec.name)
        if provider is None:
            provider = self.opened[spec.name] = self.entered.enter_context(routing.instance(spec))
        return provider

    def defer(self, a: _Attempt, seconds: float, reason: str) -> None:
        self.outbox.append(deferral(a.message, now=self.clock(), seconds=seconds, reason=reason))
        self.pending.discard(a.message.id)

    def finish(self, m: Message, result: SendResult, used: str, latency_ms: float | None = None,
               sent_body: str | None = None) -> None:
        outcome = outcome_of(m, result, provider=used, now=self.clock())
        outcome.provider_ms = latency_ms  # for the call-time histogram (delivery.latency)
        outcome.sent_body = sent_body  # what an SMS is priced on (delivery.costs.recording)
        self.outbox.append(outcome)
        self.pending.discard(m.id)

    def flush(self) -> None:
        """Write every outcome decided since the last flush, in one round trip."""
        outbox, self.outbox = self.outbox, []
        record_many(outbox, owner=self.owner, stats=self.stats)

    # -- the chain ---------------------------------------------------------------------------------------
    def advance(self, a: _Attempt) -> None:
        """Start `a` on the next provider of its chain that may take it, or write where it ends."""
        m = a.message
        while a.index < len(a.chain):
            spec = a.chain[a.index]
            provider = self.provider(spec)
            threaded = provider.concurrent and self.flight.threaded
            if threaded and self.flight.full(spec.name, provider):
                self.parked.setdefault(spec.name, deque()).append(a)
                return
            if not health.allow(spec.name):
                a.index += 1
                continue
            if a.index and envelopes.failover_too_dear(m, spec.name):  # delivery.costs: a capped fallback
                a.index += 1
                continue
            decision = ratelimit.acquire(ratelimit.limits_for(provider_name=spec.name, provider_rate=spec.rate,
                                                              channel=m.channel, address=m.recipient_address))
            if not decision.allowed:
                self.defer(a, decision.wait_seconds, f"rate limit ({spec.name})")
                return
            quota_wait = ratelimit.daily_take(spec.name, spec.daily)
            if quota_wait:  # this provider's daily quota is spent: the next one may still send today
                a.quota_waits.append(quota_wait)
                a.index += 1
                continue
            try:
                prepared = provider.prepare(m, a.content)
            except Exception as exc:  # a provider bug must not strand the rest of the batch
                log.exception("provider %s could not prepare message %s", spec.name, m.id)
                self.answered(a, spec, provider, None,
                              SendResult.transient("provider_error", f"{type(exc).__name__}: {exc}"), 0.0)
                return
            if threaded:
                self.flight.submit(spec.name, provider, m, a.content, prepared, (a, spec, provider, prepared))
            else:
                self.answered(a, spec, provider, prepared, *inflight.call(provider, m, a.content, prepared))
            return
        if a.result is not None:
            self.finish(m, a.result, a.used, a.latency_ms)
        elif a.quota_waits:
            self.defer(a, min(a.quota_waits), "daily quota of every available provider spent")
        else:
            # Every circuit is open: wait out the cooldown without spending an attempt (found by the chaos
            # battery, R4: with a short retry schedule, messages died while their only provider cooled down).
            self.defer(a, settings.COMMS_BREAKER_COOLDOWN, "every provider's circuit is open")

    def answered(self, a: _Attempt, spec: routing.Spec, provider: Provider, prepared: Any, result: SendResult,
                 latency_ms: float) -> None:
        """A provider's answer, on the worker's thread: its writes, the breaker, then done or failover."""
        try:
            provider.settle(a.message, result, prepared)
        except Exception:  # the answer stands; a failed follow-up write is logged
            log.exception("provider %s could not settle message %s", spec.name, a.message.id)
        try:
            channels.settle(a.message, result, provider=provider)
        except Exception:  # the answer stands; a failed channel write (e.g. device pruning) is logged
            log.exception("channel %s could not settle message %s", a.message.channel, a.message.id)
        healthy = not _provider_fault(result)
        health.record(spec.name, healthy=healthy, latency_ms=latency_ms, code=result.code)
        self.flight.mark(provider, healthy=healthy)
        a.result, a.used, a.latency_ms = result, spec.name, latency_ms
        if result.ok or result.error_class == "permanent" or result.maybe_accepted:
            self.finish(a.message, result, spec.name, latency_ms, a.content.body)
        else:
            a.index += 1
            self.advance(a)

    # -- waiting ------------------------------------------------------------------------------------------
    def collect(self, *, block: bool) -> None:
        """Handle every answer that has arrived (waiting for one when `block`), then unpark."""
        timeout = max(0.0, self.extend_at - time.monotonic()) if block else 0
        for (a, spec, provider, prepared), result, latency in self.flight.answers(timeout):
            self.answered(a, spec, provider, prepared, result, latency)
        self.flush()
        self.keep_leases()
        for name, parked in list(self.parked.items()):
            while parked and not self.flight.full(name, self.opened.get(name)):
                self.advance(parked.popleft())
        self.flush()

    def feed(self, messages: list[Message]) -> None:
        """Start every row of a claimed batch (or park it for a slot), answering what comes back meanwhile."""
        batch_ids = {m.batch_id for m in messages if m.batch_id}
        batches = (MessageBatch.objects.select_related("template_version__template").in_bulk(batch_ids)
                   if batch_ids else {})
        splits = {}
        if any(b.template_version_id for b in batches.values()):
            prefetch_related_objects(messages, "recipient")  # locale/timezone/bucketing, in one query
            splits = batch_splits(batches)  # staged rollouts of the pinned versions: one query per claim
        self.pending.update(m.id for m in messages)
        held = screening.screen(messages, now=self.clock())  # preferences, consent, suppression, quiet hours
        # Warm-up ladders: rows over today's cap of their pool and mailbox provider wait for tomorrow.
        held.update(warmup.gate([m for m in messages if m.id not in held], now=self.clock()))
        # Tenant daily budgets per channel: rows past today's wait for the next UTC day (never dropped).
        held.update(quota_gate.gate([m for m in messages if m.id not in held], now=self.clock()))
        # Click/open tracking and UTM for email HTML: tracking's (it sits above delivery), named in settings.
        tracker = import_string(settings.COMMS_LINK_TRACKER)(messages)
        for m in messages:
            self.collect(block=False)
            while self.flight.full():
                self.collect(block=True)
            if m.id in held and screening.hold(m, held[m.id], owner=self.owner, now=self.clock(), stats=self.stats):
                self.pending.discard(m.id)
                continue
            chain = routing.provider_specs(tenant_id=m.tenant_id, channel=m.channel, category=m.category,
                                           pool=pools.pool_of(m))
            if pinned := (m.metadata or {}).get("probe_provider"):  # a synthetic probe measures one provider
                chain = [spec for spec in chain if spec.name == pinned]
            chain, shares = channels.route(m, chain)
            if shares:  # devices another vendor of the channel carries: one follow-up per vendor (idempotent)
                message_shares_enqueue(message=m, shares=shares)
            if not chain:
                self.finish(m, SendResult.transient("COMMS_CHANNEL_UNAVAILABLE", f"no provider for {m.channel}"), "")
                continue
            try:
                # The channel's policy (e.g. the SMS STOP footer) once, before any vendor of the chain.
                content = channels.prepare_content(m, tracker.apply(m, content_for(m, batches, splits)))
            except Unrenderable as exc:
                self.finish(m, SendResult.permanent(exc.error.code, exc.error.message), "")
                continue
            if (hold := spam.send_gate(m, content, now=self.clock())) is not None:  # marketing over the threshold
                self.outbox.append(hold)
                self.pending.discard(m.id)
                continue
            self.advance(_Attempt(m, content, chain))
        self.flush()

    def ready_for_more(self) -> bool:
        """Every row fed so far has started and a slot is free: time to claim the next batch while the
        last sends are still in flight (so a batch's tail does not leave the slots idle)."""
        return not self.flight.full() and not any(self.parked.values())

    def settle_all(self) -> None:
        while len(self.flight) or any(self.parked.values()):
            self.collect(block=True)
        self.flush()


def deliver_batch(messages: list[Message], *, owner: str, clock: Clock = timezone.now,
                  stats: DrainStats | None = None) -> DrainStats:
    """Send claimed rows, many at once; each provider keeps its sessions across batches (providers.base)."""
    stats = stats or DrainStats()
    with ExitStack() as entered:
        run = _Delivery(owner=owner, clock=clock, stats=stats, entered=entered, pending=set())
        try:
            run.feed(messages)
        finally:
            # Whatever happened on this thread, answers already on their way are still written.
            run.settle_all()
    health.flush()
    return stats


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
    deadline = time.monotonic() + budget
    with ExitStack() as entered:
        run = _Delivery(owner=owner, clock=clock, stats=stats, entered=entered, pending=set())
        try:
            while True:
                if time.monotonic() > deadline or (max_batches is not None and stats.batches >= max_batches):
                    wakeup.wake(priority)
                    break
                while not run.ready_for_more():
                    run.collect(block=True)
                batch = claim_batch(max_priority=priority, limit=limit, owner=owner, now=clock())
                if not batch:
                    break
                stats.batches += 1
                stats.claimed += len(batch)
                if len(batch) == limit:
                    wakeup.wake(priority)  # more is waiting: let an idle process in the pool help
                run.feed(batch)
        finally:
            run.settle_all()
    health.flush()
    return stats


def drain_all(*, clock: Clock = timezone.now, owner: str | None = None) -> DrainStats:
    """Drain every priority in this process (tests, `manage.py` tools); P0 first as always."""
    total = DrainStats()
    for priority in range(5):
        stats = drain(priority=priority, owner=owner, budget_seconds=3600, clock=clock)
        for name in ("claimed", "sent", "retried", "failed", "dead", "lost_lease", "deferred", "batches", "blocked"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
    return total

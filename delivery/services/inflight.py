"""Many provider sends in flight per worker process.

A provider call is a network wait (an SMTP relay answers in 30-150 ms, Twilio in 150-400 ms), so a
process that sends one message at a time is bound by provider latency, not by its CPU. The engine
hands each send to a thread pool kept for the life of the process, bounded in total
(``COMMS_SEND_CONCURRENCY``) and per provider (``COMMS_PROVIDER_CONCURRENCY``), so a slow provider
holds at most its own slots and the others keep sending. Threads, not asyncio: the provider SDKs
are synchronous (smtplib, twilio, firebase-admin, boto3, anymail's requests); see
docs/operations.md for the measurement.

A sending thread runs ``provider.send_prepared`` only. Rendering, preference screening, rate
limits, breaker state and every database write stay on the worker's own thread, which collects
answers as they arrive and writes each outcome at once, fenced by the lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
import queue
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections

from delivery.providers.base import Content, Provider, SendResult

log = logging.getLogger(__name__)

_lock = threading.Lock()
# Per provider: did its last answer come from a provider in good health? One that has not answered
# yet in this process, or whose last answer was a provider fault, gets one slot (a slow start, as
# TCP's): a provider that is down then fails one message at a time, exactly as the serial engine
# did, so its circuit opens after COMMS_BREAKER_FAILURES failures, not after a full window of them.
# Kept per provider instance: a changed configuration (a new instance) starts cold again.
_healthy: "weakref.WeakKeyDictionary[Provider, bool]" = weakref.WeakKeyDictionary()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def executor() -> ThreadPoolExecutor:
    """The process's sending threads (made after a fork, never inherited from the parent)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=max(1, settings.COMMS_SEND_CONCURRENCY),
                                                     thread_name_prefix="comms-send"))
        return _pool[1]


def call(provider: Provider, message: Any, content: Content, prepared: Any) -> tuple[SendResult, float]:
    """One provider call: (its result, its latency in ms). A provider bug becomes a transient
    failure that may have reached the provider (so it is never failed over)."""
    started = time.monotonic()
    try:
        result = provider.send_prepared(message, content, prepared)
    except Exception as exc:  # a provider bug must not strand the rest of the batch
        log.exception("provider %s raised for message %s", provider.name, message.id)
        result = SendResult.transient("provider_error", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
    return result, (time.monotonic() - started) * 1000


def _threaded_call(answers: queue.SimpleQueue, name: str, tag: Any, provider: Provider, message: Any,
                   content: Content, prepared: Any) -> None:
    answer: tuple[SendResult, float] = (SendResult.transient("provider_error", "the sending thread stopped",
                                                             maybe_accepted=True), 0.0)
    try:
        answer = call(provider, message, content, prepared)
    finally:  # an answer always comes back, or the engine would wait for it forever
        answers.put((name, tag, *answer))
        # A helper that read the database after all (a per-process cache refreshing) opened a
        # connection on this thread: close it instead of keeping one per sending thread.
        connections.close_all()


class Flight:
    """The sends one worker thread has in flight, counted in total and per provider. Answers come
    back through a queue (cheaper per message than polling futures)."""

    def __init__(self, *, total: int | None = None, per_provider: int | None = None):
        self.total = max(1, total if total is not None else settings.COMMS_SEND_CONCURRENCY)
        self.per_provider = max(1, per_provider if per_provider is not None else settings.COMMS_PROVIDER_CONCURRENCY)
        self.in_flight = 0
        self.by_provider: Counter = Counter()
        self._answers: queue.SimpleQueue = queue.SimpleQueue()

    @property
    def threaded(self) -> bool:
        """With one slot the engine sends on its own thread (the serial engine, no thread hop)."""
        return self.total > 1

    def __len__(self) -> int:
        return self.in_flight

    def full(self, name: str | None = None, provider: Provider | None = None) -> bool:
        """No slot left in total, or for this provider."""
        if self.in_flight >= self.total:
            return True
        if name is None:
            return False
        return self.by_provider[name] >= (self.per_provider if _healthy.get(provider) else 1)

    @staticmethod
    def mark(provider: Provider, *, healthy: bool) -> None:
        _healthy[provider] = healthy

    def submit(self, name: str, provider: Provider, message: Any, content: Content, prepared: Any, tag: Any) -> None:
        executor().submit(_threaded_call, self._answers, name, tag, provider, message, content, prepared)
        self.in_flight += 1
        self.by_provider[name] += 1

    def answers(self, timeout: float | None) -> list[tuple[Any, SendResult, float]]:
        """(tag, result, latency ms) of every send that finished, waiting up to `timeout` for one."""
        out = []
        if not self.in_flight:
            return out
        try:
            item = self._answers.get(timeout=timeout) if timeout else self._answers.get_nowait()
            while True:
                name, tag, result, latency = item
                self.in_flight -= 1
                self.by_provider[name] -= 1
                out.append((tag, result, latency))
                item = self._answers.get_nowait()
        except queue.Empty:
            pass
        return out

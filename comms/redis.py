"""The one Redis client of the process, and the one fixed-window counter every rate limit uses.

Redis carries wake-ups, rate-limit buckets, dedupe windows and caches, never the only copy of
anything: every caller decides what a Redis outage means for it (the limits here let traffic
through; PostgreSQL stays the source of truth).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    """Shared by every app (short timeouts: a slow Redis must not hold a request or a worker)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def parse_rate(rate: str) -> tuple[int, int]:
    """``"600/min"`` → (600, 60): the budget and the window length in seconds (s, m, h, d)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period[0]]


@dataclass(frozen=True)
class RateWindow:
    """The current fixed window of one budget: key ``<prefix>:<window number>``, expiring a second
    after the window ends. Every rate limit (API keys, public pages, provider webhooks, credential
    lockout) counts through this, shared by every process. (DRF's SimpleRateThrottle keeps a list of
    timestamps per key instead, which grows with the rate and is re-pickled on every request.)
    Redis errors propagate: each caller chooses to fail open."""

    name: str
    limit: int
    seconds: int
    wait: float  # seconds until the window ends (Retry-After)

    def queue(self, pipe: Any) -> None:
        """Queue one hit on a pipeline (to share a round trip with other commands)."""
        pipe.incr(self.name)
        pipe.expire(self.name, self.seconds + 1)

    def hit(self) -> int:
        """Count one hit; the hits so far in this window, this one included."""
        pipe = redis_client().pipeline(transaction=False)
        self.queue(pipe)
        return pipe.execute()[0]

    def used(self) -> int:
        """The hits so far in this window, without adding one."""
        return int(redis_client().get(self.name) or 0)


def rate_window(prefix: str, *, seconds: int, limit: int = 0) -> RateWindow:
    """The window of ``prefix`` that is current now."""
    now = time.time()
    window = int(now // seconds)
    return RateWindow(f"{prefix}:{window}", limit, seconds, (window + 1) * seconds - now)

"""One beat across many machines: a leader lease in Redis around Celery's own scheduler.

Every node can run the same process set (web, worker pools, beat) against one PostgreSQL and Redis.
Beat must fire each schedule once, not once per node: two beats would double every housekeeping
pass, rollup and probe round (each is safe to repeat, but the work and the sends to Redis double).
So each beat process asks for a Redis key (``SET NX PX``): the holder sends due tasks and renews
the key every third of its lifetime; the others only wait and ask again. A holder that dies stops
renewing; another takes over within ``COMMS_BEAT_LOCK_SECONDS``. A holder that cannot renew (Redis
unreachable, key taken after a long pause) steps down before sending anything more.

Configured with ``CELERY_BEAT_SCHEDULER = "comms.beat:LeaderScheduler"`` (config/settings/operations.py).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from celery.beat import PersistentScheduler
from django.conf import settings

from comms.redis import redis_client

log = logging.getLogger(__name__)

KEY = "comms:beat:leader"
# Renew only while the key is still ours (compare-and-set: a stale holder must not steal it back).
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def beat_leader() -> str:
    """Who holds the beat lease now ('' when nobody does): shown by tests and operators."""
    value = redis_client().get(KEY)
    return value.decode() if value else ""


class LeaderScheduler(PersistentScheduler):
    """Celery's file-backed scheduler that only ticks while this process holds the leader lease."""

    def __init__(self, *args, **kwargs):
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = float(settings.COMMS_BEAT_LOCK_SECONDS)
        self.leading = False
        self._renewed_at = 0.0
        super().__init__(*args, **kwargs)

    def _hold(self) -> bool:
        """Take or renew the lease; False means: not the leader now, send nothing."""
        ttl_ms = int(self.lease_seconds * 1000)
        try:
            client = redis_client()
            if self.leading:
                held = bool(client.eval(_RENEW, 1, KEY, self.identity, ttl_ms))
            else:
                held = bool(client.set(KEY, self.identity, nx=True, px=ttl_ms))
        except Exception:  # Redis down: the broker is down too; whoever holds the key when it is back leads
            log.warning("beat: Redis unreachable; not sending scheduled tasks", exc_info=True)
            held = False
        if held != self.leading:
            log.warning("beat %s %s the leader lease", self.identity, "took" if held else "lost")
        self.leading = held
        self._renewed_at = time.monotonic() if held else 0.0
        return held

    def tick(self, *args, **kwargs) -> float:
        """Send due tasks only as the leader; wake often enough to renew (or to take over)."""
        step = self.lease_seconds / 3
        if not self._hold():
            return step
        return min(super().tick(*args, **kwargs), step)

    def close(self) -> None:
        """Hand the lease on at once on a clean stop instead of making the others wait it out."""
        if self.leading:
            try:
                redis_client().eval(_RELEASE, 1, KEY, self.identity)
            except Exception:
                log.debug("beat: could not release the leader lease", exc_info=True)
            self.leading = False
        super().close()

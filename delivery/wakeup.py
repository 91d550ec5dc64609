"""Wake-ups: a Celery task per priority queue, sent when the enqueuing transaction commits.

Wake-ups are coalesced through one Redis flag per priority: a producer only sends a task when the
flag was not already set, and a draining worker clears the flag *before* it claims. A row that
commits after the clear sets the flag again and gets its own wake-up; a row that commits before it
is seen by the claim. Nothing here is needed for correctness: if Redis is down, beat re-dispatches
every due row once it is back.
"""

from __future__ import annotations

import logging

from django.db import transaction

from comms.redis import redis_client

log = logging.getLogger(__name__)
FLAG_TTL = 30  # a lost wake-up (flushed broker) blocks new ones for at most this long


def _flag(priority: int) -> str:
    return f"comms:wake:p{priority}"


def queue_name(priority: int) -> str:
    return f"p{int(priority)}"


def wake(priority: int, *, force: bool = False, expires: int | None = None) -> bool:
    """Send a drain task for `priority` unless one is already pending. Never raises."""
    from delivery.tasks import drain

    try:
        if force or redis_client().set(_flag(priority), "1", nx=True, ex=FLAG_TTL):
            drain.apply_async(args=[int(priority)], queue=queue_name(priority), expires=expires)
            return True
    except Exception:  # the row is durable; beat will wake a worker once the broker is back
        log.warning("wake-up for p%s not sent; beat will re-dispatch", priority, exc_info=True)
    return False


def wake_on_commit(priorities: set[int] | list[int]) -> None:
    for priority in sorted(set(priorities)):
        transaction.on_commit(lambda p=priority: wake(p))


def clear(priority: int) -> None:
    try:
        redis_client().delete(_flag(priority))
    except Exception:
        log.warning("could not clear wake flag p%s", priority, exc_info=True)

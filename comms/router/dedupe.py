"""Exactly-once helpers of the router: the Redis dedupe window and the per-message idempotency key."""

from __future__ import annotations

import hashlib
import logging

from comms.redis import redis_client

log = logging.getLogger(__name__)


def dedupe_key(tenant, key: str) -> str:
    return f"comms:dedupe:{tenant.id}:{key}"


def dedupe_open(tenant, key: str, ttl: int, *, dry_run: bool) -> bool:
    """True when this event opens the window (first of its kind); Redis down → allow (DB keys still hold)."""
    try:
        if dry_run:
            return not redis_client().exists(dedupe_key(tenant, key))
        return bool(redis_client().set(dedupe_key(tenant, key), "1", nx=True, ex=ttl))
    except Exception:
        log.warning("dedupe window unavailable (Redis); relying on idempotency keys", exc_info=True)
        return True


def dedupe_release(tenant, key: str) -> None:
    try:
        redis_client().delete(dedupe_key(tenant, key))
    except Exception:
        log.warning("could not release dedupe key %s", key, exc_info=True)


def idempotency_key(*, template: str, version: int, recipient: str, cause_ref: str, step: int | None = None) -> str:
    """(template, version, recipient, cause_ref), hashed where it could outgrow the column."""
    tail = hashlib.sha256(f"{recipient}\x00{cause_ref}".encode()).hexdigest()[:32]
    suffix = f":s{step}" if step is not None else ""
    return f"evt:{template[:128]}:v{version}:{tail}{suffix}"

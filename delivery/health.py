"""Provider health: a circuit breaker per provider and rolling counters, kept in Redis.

closed → (COMMS_BREAKER_FAILURES consecutive transient failures) → open for COMMS_BREAKER_COOLDOWN
seconds → half-open: one probe message at a time; its success closes the circuit, its failure opens
it again. While a provider is open, sends go to the next provider of the channel (failover).
Counters are bucketed per hour for the success rates and latency the dashboards show.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from delivery.wakeup import redis_client

log = logging.getLogger(__name__)


def _key(name: str) -> str:
    return f"comms:cb:{name}"


def allow(name: str) -> bool:
    """May this provider be used now? Fails closed-circuit (allowed) when Redis is unavailable."""
    try:
        client = redis_client()
        state = client.hgetall(_key(name))
        if not state or state.get(b"state", b"closed") == b"closed":
            return True
        if time.time() < float(state.get(b"until", b"0")):
            return False
        return bool(client.set(f"{_key(name)}:probe", "1", nx=True, ex=max(1, int(settings.COMMS_BREAKER_COOLDOWN))))
    except Exception:
        log.warning("circuit breaker state unavailable for %s", name, exc_info=True)
        return True


def record(name: str, *, healthy: bool, latency_ms: float) -> None:
    """One outcome. `healthy` means the provider answered (a permanent per-recipient refusal is healthy)."""
    try:
        client = redis_client()
        hour = int(time.time() // 3600)
        stats = f"comms:health:{name}:{hour}"
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(stats, "ok" if healthy else "fail", 1)
        pipe.hincrbyfloat(stats, "latency_ms", latency_ms)
        pipe.expire(stats, 26 * 3600)
        if healthy:
            pipe.hset(_key(name), mapping={"state": "closed", "failures": 0})
            pipe.delete(f"{_key(name)}:probe")
            pipe.execute()
            return
        pipe.hincrby(_key(name), "failures", 1)
        pipe.hget(_key(name), "state")
        failures, state = pipe.execute()[-2:]
        if failures >= settings.COMMS_BREAKER_FAILURES or state in (b"open",):
            client.hset(_key(name), mapping={"state": "open", "until": time.time() + settings.COMMS_BREAKER_COOLDOWN,
                                             "opened_at": time.time()})
            client.delete(f"{_key(name)}:probe")
            log.warning("circuit for provider %s is open after %s failures", name, failures)
    except Exception:
        log.warning("could not record health of %s", name, exc_info=True)


def snapshot(name: str) -> dict:
    """State and rolling success rates (1 h, 24 h) and mean latency for dashboards and the API."""
    client = redis_client()
    state = {k.decode(): v.decode() for k, v in client.hgetall(_key(name)).items()}
    hour = int(time.time() // 3600)
    totals = {"1h": [0, 0, 0.0], "24h": [0, 0, 0.0]}
    for offset in range(24):
        raw = client.hgetall(f"comms:health:{name}:{hour - offset}")
        ok, fail, latency = int(raw.get(b"ok", 0)), int(raw.get(b"fail", 0)), float(raw.get(b"latency_ms", 0))
        for window in (["1h", "24h"] if offset == 0 else ["24h"]):
            totals[window][0] += ok
            totals[window][1] += fail
            totals[window][2] += latency
    out = {"provider": name, "state": state.get("state", "closed"), "consecutive_failures": int(state.get("failures", 0))}
    for window, (ok, fail, latency) in totals.items():
        count = ok + fail
        out[f"success_rate_{window}"] = round(100.0 * ok / count, 2) if count else None
        out[f"avg_latency_ms_{window}"] = round(latency / count, 1) if count else None
    return out

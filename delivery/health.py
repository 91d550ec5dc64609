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
# Hot path: a healthy provider costs no Redis round trip per message. Its breaker state is read at
# most once per STATE_TTL seconds per process, and success counters are flushed in one pipeline per
# FLUSH_SECONDS; failures are written at once, because the breaker counts them across processes.
STATE_TTL = 1.0
FLUSH_SECONDS = 1.0
_state: dict[str, tuple[float, dict]] = {}
_pending: dict[str, list[float]] = {}
_last_flush = [0.0]


def _key(name: str) -> str:
    return f"comms:cb:{name}"


def _read_state(name: str) -> dict:
    now = time.monotonic()
    hit = _state.get(name)
    if hit and hit[0] > now:
        return hit[1]
    raw = redis_client().hgetall(_key(name))
    state = {k.decode(): v.decode() for k, v in raw.items()}
    _state[name] = (now + STATE_TTL, state)
    return state


def allow(name: str) -> bool:
    """May this provider be used now? Fails closed-circuit (allowed) when Redis is unavailable."""
    try:
        client = redis_client()
        state = _read_state(name)
        if state.get("state", "closed") == "closed":
            return True
        if time.time() < float(state.get("until", "0")):
            return False
        # Half-open: whatever this probe's outcome, record() must write it through.
        _state[name] = (time.monotonic() + STATE_TTL, {"state": "half_open"})
        return bool(client.set(f"{_key(name)}:probe", "1", nx=True, ex=max(1, int(settings.COMMS_BREAKER_COOLDOWN))))
    except Exception:
        log.warning("circuit breaker state unavailable for %s", name, exc_info=True)
        return True


def record(name: str, *, healthy: bool, latency_ms: float) -> None:
    """One outcome. `healthy` means the provider answered (a permanent per-recipient refusal is healthy)."""
    try:
        counters = _pending.setdefault(name, [0, 0, 0.0])
        counters[0 if healthy else 1] += 1
        counters[2] += latency_ms
        client = redis_client()
        if healthy:
            cached = _state.get(name, (0, {}))[1]
            if cached.get("state", "closed") != "closed" or int(cached.get("failures", 0)):
                client.hset(_key(name), mapping={"state": "closed", "failures": 0})
                client.delete(f"{_key(name)}:probe")
                _state.pop(name, None)
            if time.monotonic() - _last_flush[0] > FLUSH_SECONDS:
                flush()
            return
        flush()
        _state.pop(name, None)
        pipe = client.pipeline(transaction=False)
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


def reset_local() -> None:
    """Forget this process's cached breaker states and unflushed counters (tests, config reloads)."""
    _state.clear()
    _pending.clear()


def flush() -> None:
    """Write the accumulated counters (one pipeline for every provider this process used)."""
    _last_flush[0] = time.monotonic()
    if not _pending:
        return
    hour = int(time.time() // 3600)
    pipe = redis_client().pipeline(transaction=False)
    for name, (ok, fail, latency) in _pending.items():
        stats = f"comms:health:{name}:{hour}"
        if ok:
            pipe.hincrby(stats, "ok", int(ok))
        if fail:
            pipe.hincrby(stats, "fail", int(fail))
        pipe.hincrbyfloat(stats, "latency_ms", latency)
        pipe.expire(stats, 26 * 3600)
    _pending.clear()
    pipe.execute()


def snapshot(name: str) -> dict:
    """State and rolling success rates (1 h, 24 h) and mean latency for dashboards and the API."""
    flush()
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

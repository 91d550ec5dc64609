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

from comms.redis import redis_client

log = logging.getLogger(__name__)
# Hot path: a healthy provider costs no Redis round trip per message. Its breaker state is read at
# most once per STATE_TTL seconds per process, and success counters are flushed in one pipeline per
# FLUSH_SECONDS; failures are written at once, because the breaker counts them across processes.
STATE_TTL = 1.0
FLUSH_SECONDS = 1.0
_state: dict[str, tuple[float, dict]] = {}
_pending: dict[str, list[float]] = {}
_last_flush = [0.0]
PROVIDERS_KEY = "comms:health:providers"  # every provider that ever reported, for the persisted table


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


# Latency histogram bucket upper bounds (ms) for the p95 the dashboards show; the last is "above".
LATENCY_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


def _bucket(latency_ms: float) -> int:
    for bound in LATENCY_BUCKETS:
        if latency_ms <= bound:
            return bound
    return 0  # above the last bound


def record(name: str, *, healthy: bool, latency_ms: float, code: str = "") -> None:
    """One outcome. `healthy` means the provider answered (a permanent per-recipient refusal is healthy);
    `code` is the failure code of an unhealthy outcome (kept as the provider's last failure)."""
    try:
        counters = _pending.setdefault(name, [0, 0, 0.0, {}])
        counters[0 if healthy else 1] += 1
        counters[2] += latency_ms
        bucket = _bucket(latency_ms)
        counters[3][bucket] = counters[3].get(bucket, 0) + 1
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
        pipe.hset(_key(name), mapping={"last_failure_code": code or "unknown", "last_failure_at": time.time()})
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
    for name, (ok, fail, latency, buckets) in _pending.items():
        stats = f"comms:health:{name}:{hour}"
        if ok:
            pipe.hincrby(stats, "ok", int(ok))
        if fail:
            pipe.hincrby(stats, "fail", int(fail))
        pipe.hincrbyfloat(stats, "latency_ms", latency)
        for bound, count in buckets.items():
            pipe.hincrby(stats, f"b{bound}", count)
        pipe.expire(stats, 26 * 3600)
        pipe.sadd(PROVIDERS_KEY, name)
    _pending.clear()
    pipe.execute()


def _p95(histogram: dict[int, int]) -> float | None:
    """The bucket bound under which 95 % of the sends finished (None without data)."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for bound in (*LATENCY_BUCKETS, 0):
        seen += histogram.get(bound, 0)
        if seen >= 0.95 * total:
            return float(bound or LATENCY_BUCKETS[-1])
    return float(LATENCY_BUCKETS[-1])


def snapshot(name: str) -> dict:
    """Breaker state, counts, success rates, mean and p95 latency (1 h, 24 h) and the last failure."""
    return snapshots([name])[0]


def snapshots(names: list[str]) -> list[dict]:
    """``snapshot`` for many providers in one Redis pipeline (25 reads each; the dashboards ask for all)."""
    flush()
    hour = int(time.time() // 3600)
    pipe = redis_client().pipeline(transaction=False)
    for name in names:
        pipe.hgetall(_key(name))
        for offset in range(24):
            pipe.hgetall(f"comms:health:{name}:{hour - offset}")
    answers = pipe.execute() if names else []
    return [_shape(name, answers[i * 25], answers[i * 25 + 1:(i + 1) * 25]) for i, name in enumerate(names)]


def _shape(name: str, raw_state: dict, hours: list[dict]) -> dict:
    state = {k.decode(): v.decode() for k, v in raw_state.items()}
    totals = {"1h": [0, 0, 0.0, {}], "24h": [0, 0, 0.0, {}]}
    for offset, raw in enumerate(hours):
        ok, fail, latency = int(raw.get(b"ok", 0)), int(raw.get(b"fail", 0)), float(raw.get(b"latency_ms", 0))
        buckets = {int(k[1:]): int(v) for k, v in raw.items() if k.startswith(b"b")}
        for window in (["1h", "24h"] if offset == 0 else ["24h"]):
            totals[window][0] += ok
            totals[window][1] += fail
            totals[window][2] += latency
            for bound, count in buckets.items():
                totals[window][3][bound] = totals[window][3].get(bound, 0) + count
    out = {"provider": name, "state": state.get("state", "closed"), "consecutive_failures": int(state.get("failures", 0)),
           "last_failure_code": state.get("last_failure_code", ""),
           "last_failure_at": float(state["last_failure_at"]) if state.get("last_failure_at") else None,
           "opened_at": float(state["opened_at"]) if state.get("opened_at") else None}
    for window, (ok, fail, latency, histogram) in totals.items():
        count = ok + fail
        out[f"ok_{window}"], out[f"failed_{window}"] = ok, fail
        out[f"success_rate_{window}"] = round(100.0 * ok / count, 2) if count else None
        out[f"avg_latency_ms_{window}"] = round(latency / count, 1) if count else None
        out[f"p95_latency_ms_{window}"] = _p95(histogram)
    return out


def reported_providers() -> list[str]:
    """Every provider name that has reported an outcome (the rows the health table should have)."""
    return sorted(n.decode() for n in redis_client().smembers(PROVIDERS_KEY))

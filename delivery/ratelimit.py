"""Rate limits in Redis: GCRA buckets (one atomic Lua call for all the buckets of a send).

GCRA ("generic cell rate algorithm") keeps one timestamp per bucket: the theoretical arrival time of
the next message. With a burst of 1 it spaces messages exactly 1/rate apart, so a 10/s limit never
lets more than 10 through in any second; larger bursts allow that many back-to-back. The script
checks every bucket first and only then consumes from all of them, so a message that waits on one
limit does not eat another's budget. Time comes from the Redis server, so many machines agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from comms.redis import redis_client

log = logging.getLogger(__name__)

_GCRA = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local need = tat - tolerance - now
  if need > wait then wait = need end
end
if wait > 0 then
  return {0, tostring(wait)}
end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tats[i] + interval
  redis.call('SET', key, tostring(tat), 'PX', math.ceil((tat - now + tolerance) * 1000) + 1000)
end
return {1, '0'}
"""


@dataclass(frozen=True)
class Limit:
    key: str
    per_second: float
    burst: int = 1

    @classmethod
    def per(cls, key: str, count: int, seconds: float, *, burst: int | None = None) -> "Limit":
        return cls(key=key, per_second=count / seconds, burst=burst or max(1, int(count * min(seconds, 60) / seconds)))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    wait_seconds: float = 0.0


_script = None


def acquire(limits: list[Limit], *, now: float | None = None) -> Decision:
    """Take one message's worth from every bucket, or say how long to wait. Fails open on Redis errors."""
    if not limits:
        return Decision(True)
    global _script
    try:
        client = redis_client()
        if _script is None:
            _script = client.register_script(_GCRA)
        args: list = ["" if now is None else repr(now)]
        for limit in limits:
            interval = 1.0 / limit.per_second
            args += [repr(interval), repr(interval * (limit.burst - 1))]
        allowed, wait = _script(keys=[f"comms:rl:{limit.key}" for limit in limits], args=args, client=client)
    except Exception:  # a Redis outage must not stop delivery; providers still enforce their own limits
        log.warning("rate limiter unavailable; sending without it", exc_info=True)
        return Decision(True)
    return Decision(bool(int(allowed)), float(wait))


def domain_limits() -> dict[str, tuple[int, int]]:
    """Per recipient domain: (messages, per seconds). Seed 003's defaults, overridable in settings."""
    return settings.COMMS_DOMAIN_RATE_LIMITS


def limits_for(*, provider_name: str, provider_rate: float | None, channel: str, address: str) -> list[Limit]:
    limits = []
    if provider_rate:
        limits.append(Limit(key=f"provider:{provider_name}", per_second=float(provider_rate), burst=1))
    if channel == "email":
        domain = address.rpartition("@")[2].lower()
        if domain in domain_limits():
            count, seconds = domain_limits()[domain]
            limits.append(Limit.per(f"domain:{domain}", count, seconds))
    return limits


def daily_take(name: str, limit: int | None, *, now: float | None = None) -> float:
    """Count one send against a provider's daily quota (per UTC day). 0 when taken, else the seconds
    until the quota renews. A quota is a hard cap, unlike the smoothing GCRA buckets above: when it
    is spent, the engine moves on to the next provider. Fails open on Redis errors."""
    if not limit:
        return 0.0
    import time as _time

    now = _time.time() if now is None else now
    day = int(now // 86400)
    key = f"comms:quota:{name}:{day}"
    try:
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 2 * 86400)
        count = pipe.execute()[0]
        if count <= limit:
            return 0.0
        client.decr(key)
    except Exception:
        log.warning("daily quota of %s unavailable; sending without it", name, exc_info=True)
        return 0.0
    return (day + 1) * 86400 - now

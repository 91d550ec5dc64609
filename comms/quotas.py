"""Tenant quotas and budgets: plan limits, their Redis counters, and the API's refusals.

Limits (seed 002: "tenant budgets, configurable per plan") come from the tenant's plan in
COMMS_TENANT_PLANS, overridden field by field by its TenantQuota row:

* ``weight``: its share of each priority's claim (delivery.services.fairness);
* ``api_requests_per_minute``: past it the API answers 429 ``COMMS_TENANT_QUOTA``;
* ``max_bulk_size``: a larger bulk call is refused whole with 422 ``COMMS_TENANT_QUOTA``;
* ``daily_messages`` per channel, counted twice per UTC day:
  - *accepted* at the API: a request that would pass the budget is refused whole with 429 (a bulk call
    is all-or-nothing: it is accepted only if every row fits, so nothing is half-sent);
  - *sent* by the engine: work accepted another way (events, journeys, campaigns, schedules from an
    earlier day, a plan lowered mid-day) past the day's budget is deferred to the next UTC day,
    never dropped (delivery.services.quota_gate).

Counters live in Redis (atomic Lua, one key per tenant/channel/day/kind, expiring after two days),
shared by every process. A Redis outage lets traffic through, like every other limit of ours (comms.redis):
quotas are a budget, not a safety mechanism, and PostgreSQL stays the source of truth for messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

from django.conf import settings
from rest_framework import throttling

from comms import errors
from comms.models import TenantQuota
from comms.redis import rate_window, redis_client

log = logging.getLogger(__name__)

DAY = 86400
_UNCAPPED = 2**62  # the "limit" a P0 emergency is counted against: counted, never refused
_EVENTS = "comms:tq:events"  # hash "tenant|kind|channel" → count since Redis started (Prometheus counters)

# Take up to ARGV[1] from a budget of ARGV[2] (all or nothing when ARGV[3] == 1): {taken, used after}.
_TAKE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local want, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local room = math.max(limit - used, 0)
local n = want
if n > room then if ARGV[3] == '1' then n = 0 else n = room end end
if n > 0 then
  redis.call('INCRBY', KEYS[1], n)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return {n, used + n}
"""


@dataclass(frozen=True)
class Limits:
    plan: str = ""
    weight: int = 1
    api_requests_per_minute: int | None = None
    max_bulk_size: int | None = None
    daily_messages: dict[str, int] = field(default_factory=dict)


_cache: dict[Any, tuple[float, Limits]] = {}


def forget(tenant_id: Any = None) -> None:
    """Drop cached limits (all, or one tenant's): the admin calls this after a change."""
    if tenant_id is None:
        _cache.clear()
    else:
        _cache.pop(str(tenant_id), None)


def _resolve(tenant_id: Any) -> Limits:
    row = TenantQuota.objects.filter(tenant_id=tenant_id).first()
    plan_name = (row.plan if row and row.plan else settings.COMMS_TENANT_DEFAULT_PLAN)
    plan = settings.COMMS_TENANT_PLANS.get(plan_name, {})
    daily = {**plan.get("daily_messages", {}), **((row.daily_messages or {}) if row else {})}

    def pick(name: str) -> Any:
        own = getattr(row, name) if row else None
        return own if own is not None else plan.get(name)

    return Limits(plan=plan_name, weight=int(pick("weight") or 1),
                  api_requests_per_minute=pick("api_requests_per_minute"), max_bulk_size=pick("max_bulk_size"),
                  daily_messages={k: int(v) for k, v in daily.items() if v is not None})


def limits(tenant_id: Any) -> Limits:
    """The tenant's effective limits, cached per process for COMMS_TENANT_QUOTA_CACHE_SECONDS (the
    claim and the API read them on every call; a plan change applies within that time)."""
    key = str(tenant_id)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    value = _resolve(tenant_id)
    _cache[key] = (now + settings.COMMS_TENANT_QUOTA_CACHE_SECONDS, value)
    return value


def weight(tenant_id: Any) -> int:
    return limits(tenant_id).weight


def next_window(now: datetime) -> datetime:
    """The next UTC midnight: when daily budgets renew and deferred work is released."""
    day = now.astimezone(dt_timezone.utc).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=dt_timezone.utc)


def _key(tenant_id: Any, channel: str, kind: str, now: datetime) -> str:
    return f"comms:tq:{tenant_id}:{channel}:{now.astimezone(dt_timezone.utc).date().isoformat()}:{kind}"


def _take(key: str, want: int, limit: int, *, whole: bool) -> tuple[int, int]:
    taken, used = redis_client().eval(_TAKE_LUA, 1, key, want, limit, "1" if whole else "0", 2 * DAY)
    return int(taken), int(used)


def count_event(tenant_id: Any, kind: str, channel: str = "", n: int = 1) -> None:
    """Count a refusal or deferral for the metrics (best effort)."""
    try:
        redis_client().hincrby(_EVENTS, f"{tenant_id}|{kind}|{channel}", n)
    except Exception:
        pass


def events() -> dict[tuple[str, str, str], int]:
    """{(tenant id, kind, channel): count} of refusals and deferrals since Redis started."""
    try:
        raw = redis_client().hgetall(_EVENTS)
    except Exception:
        return {}
    return {tuple(k.decode().split("|", 2)): int(v) for k, v in raw.items()}


# --- the API -----------------------------------------------------------------------------------------
def bulk_size_check(*, tenant_id: Any, count: int) -> None:
    """422 COMMS_TENANT_QUOTA for a bulk call over the plan's max size (retrying the same call cannot help)."""
    cap = limits(tenant_id).max_bulk_size
    if cap is not None and count > cap:
        count_event(tenant_id, "refused_bulk_size")
        raise errors.TenantQuotaBulkSize(f"{count} recipients; this tenant's plan allows at most {cap} per bulk call.",
                                         details={"quota": "max_bulk_size", "limit": cap, "requested": count})


@dataclass
class Admission:
    """Rows counted against today's accepted budget; ``refund`` gives back what was not created."""

    tenant_id: Any
    channel: str
    count: int
    key: str = ""

    def refund(self, n: int | None = None) -> None:
        n = self.count if n is None else n
        if self.key and n > 0:
            try:
                redis_client().decrby(self.key, n)
            except Exception:
                log.warning("could not refund %d of tenant %s's %s quota", n, self.tenant_id, self.channel)


def admit(*, tenant_id: Any, channel: str, count: int, now: datetime,
          replay: Callable[[], bool] | None = None, always: bool = False) -> Admission:
    """Count ``count`` new messages against today's budget for ``channel``, all or nothing; past it,
    429 COMMS_TENANT_QUOTA with Retry-After until the next UTC day, unless ``replay()`` says the request
    repeats an accepted one (its idempotency key exists: the first answer is returned, nothing new).
    ``always`` (a P0 emergency) counts the messages but is never refused: a budget never holds an emergency."""
    cap = limits(tenant_id).daily_messages.get(channel)
    if cap is None or count <= 0:
        return Admission(tenant_id, channel, 0)
    key = _key(tenant_id, channel, "accepted", now)
    try:
        taken, used = _take(key, count, _UNCAPPED if always else cap, whole=True)
    except Exception:
        log.warning("tenant quota counter unavailable; accepting without it", exc_info=True)
        return Admission(tenant_id, channel, 0)
    if taken < count:
        if replay is not None and replay():
            return Admission(tenant_id, channel, 0)
        count_event(tenant_id, "refused_daily", channel)
        wait = max(1, int((next_window(now) - now).total_seconds()))
        raise errors.TenantQuota(
            f"{count} more {channel} message(s) would pass this tenant's daily budget of {cap} "
            f"({used} accepted today). Nothing was accepted.",
            details={"quota": "daily_messages", "channel": channel, "limit": cap, "used": used,
                     "requested": count, "remaining": max(cap - used, 0), "retry_after_seconds": wait})
    return Admission(tenant_id, channel, count, key)


@contextmanager
def admitted(*, tenant_id: Any, channel: str, count: int, now: datetime,
             replay: Callable[[], bool] | None = None, always: bool = False) -> Iterator[Admission]:
    """``admit`` for the block's work; everything is given back if the block raises (nothing was
    accepted), and the block refunds what it did not create (an idempotent replay, skipped rows)."""
    admission = admit(tenant_id=tenant_id, channel=channel, count=count, now=now, replay=replay, always=always)
    try:
        yield admission
    except BaseException:
        admission.refund()
        raise


class TenantQuotaThrottle(throttling.BaseThrottle):
    """API requests per minute per tenant (all its keys together). Raises the typed 429 itself so the
    caller sees COMMS_TENANT_QUOTA, not the per-key COMMS_RATE_LIMITED."""

    def allow_request(self, request, view) -> bool:
        tenant = getattr(request.user, "tenant", None)
        if tenant is None:
            return True
        cap = limits(tenant.id).api_requests_per_minute
        if cap is None:
            return True
        counter = rate_window(f"comms:tq:api:{tenant.id}", seconds=60, limit=cap)
        try:
            used = counter.hit()
        except Exception:  # a Redis outage must not take the API down with it
            return True
        if used > cap:
            count_event(tenant.id, "refused_api_rate")
            raise errors.TenantQuota(f"This tenant's plan allows {cap} API requests per minute.",
                                     details={"quota": "api_requests_per_minute", "limit": cap,
                                              "retry_after_seconds": max(1, int(counter.wait))})
        return True


# --- the engine -------------------------------------------------------------------------------------
def take_sends(*, tenant_id: Any, channel: str, count: int, now: datetime, always: bool = False) -> int:
    """How many of ``count`` claimed rows may be sent today (the rest wait for the next window).
    ``always`` (P0 rows) counts them against the day without holding any."""
    cap = limits(tenant_id).daily_messages.get(channel)
    if cap is None:
        return count
    try:
        return _take(_key(tenant_id, channel, "sent", now), count, _UNCAPPED if always else cap, whole=False)[0]
    except Exception:
        log.warning("tenant quota counter unavailable; sending without it", exc_info=True)
        return count


def usage(tenant_ids: list, *, now: datetime) -> list[dict]:
    """Today's use of every daily budget of these tenants: {tenant_id, channel, limit, accepted, sent}."""
    rows = []
    for tenant_id in tenant_ids:
        for channel, cap in sorted(limits(tenant_id).daily_messages.items()):
            rows.append({"tenant_id": tenant_id, "channel": channel, "limit": cap,
                         "accepted": _key(tenant_id, channel, "accepted", now),
                         "sent": _key(tenant_id, channel, "sent", now)})
    if not rows:
        return []
    try:
        values = redis_client().mget([k for r in rows for k in (r["accepted"], r["sent"])])
    except Exception:
        values = [None] * (2 * len(rows))
    for i, r in enumerate(rows):
        r["accepted"], r["sent"] = int(values[2 * i] or 0), int(values[2 * i + 1] or 0)
        r["pct"] = round(100 * max(r["accepted"], r["sent"]) / r["limit"], 1) if r["limit"] else 100.0
    return rows

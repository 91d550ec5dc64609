"""Warm-up ladders: a new pool's daily caps per mailbox provider; what is over today's cap waits.

Mailbox providers judge a new sending IP/domain by its volume curve, so each provider group
(Gmail, Yahoo/AOL, Microsoft, other) gets its own daily cap from the ladder (seed 001: "4-week ramp
with daily send ladders; start with high-engagement templates").

Counting is atomic across every worker process: one PostgreSQL row per (ladder, group, UTC day),
taken with ``SELECT … FOR UPDATE`` inside a single UPDATE, so two workers can never both take the
last slot, and the count survives a Redis restart. A worker asks once per claimed batch and group.

Claim order: rows are claimed highest priority first (delivery.services.outcomes.claim_batch);
within a batch the gate hands slots out by (priority, engagement), and the last
COMMS_WARMUP_RESERVE share of each day's cap is kept for P0/P1 and engaged recipients (opens or
clicks in the last COMMS_WARMUP_ENGAGEMENT_DAYS): near the cap, low-priority mail to unengaged
recipients is deferred first. A deferred row gets status 'deferred' with code COMMS_WARMUP_CAP and
is promoted back to the queue at the next UTC midnight, when the ladder has advanced a day.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from datetime import date, datetime, time as dtime, timedelta, timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from comms import errors
from comms.audit import audit_record
from delivery.deliverability import pools
from delivery.deliverability.models_pools import DEFAULT_LADDER, Pool, WarmupCounter, WarmupLadder
from preferences.decision import DEFER, Decision

GROUPS = ("gmail", "yahoo", "microsoft", "other")
_EXACT = {"gmail.com": "gmail", "googlemail.com": "gmail", "aol.com": "yahoo", "ymail.com": "yahoo",
          "rocketmail.com": "yahoo", "aim.com": "yahoo", "msn.com": "microsoft"}
# Country variants (yahoo.co.uk, hotmail.fr, live.de, outlook.jp …).
_PREFIX = re.compile(r"^(?:(yahoo)|(hotmail|outlook|live|windowslive))\.[a-z.]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CODE = "COMMS_WARMUP_CAP"

_CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, list[WarmupLadder]]] = {}


def mailbox_group(address: str) -> str:
    """The mailbox-provider group of an address, by its domain (MX-based grouping is not done)."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    if domain in _EXACT:
        return _EXACT[domain]
    m = _PREFIX.match(domain)
    if m:
        return "yahoo" if m.group(1) else "microsoft"
    return "other"


def _ladders() -> list[WarmupLadder]:
    """Every ladder that is not finished, with its pool; cached briefly (read on every claim)."""
    now = time.monotonic()
    hit = _cache.get("all")
    if hit and hit[0] > now:
        return hit[1]
    ladders = list(WarmupLadder.objects.select_related("pool"))
    _cache["all"] = (now + _CACHE_SECONDS, ladders)
    return ladders


def clear_cache() -> None:
    _cache.clear()


def day_index(ladder: WarmupLadder, today: date) -> int:
    """0-based day of the ladder; frozen while paused; a ladder starting in the future is on day 0."""
    effective = ladder.paused_on if ladder.state == WarmupLadder.State.PAUSED and ladder.paused_on else today
    return max(0, (effective - ladder.started_on).days)


def schedule_for(ladder: WarmupLadder, group: str) -> list[int]:
    return list(ladder.group_schedules.get(group) or ladder.schedule)


def cap_for(ladder: WarmupLadder, group: str, today: date) -> int | None:
    """Today's cap for a group; None once the ladder is complete (no cap); 0 while held."""
    if ladder.state == WarmupLadder.State.HELD:
        return 0
    schedule = schedule_for(ladder, group)
    index = day_index(ladder, today)
    return schedule[index] if index < len(schedule) else None


def _from_domain(message: Any) -> str:
    sender = (message.metadata or {}).get("from_email") or settings.DEFAULT_FROM_EMAIL
    return str(sender).rpartition("@")[2].strip(" >").lower()


def _ladder_of(message: Any, ladders: list[WarmupLadder]) -> WarmupLadder | None:
    pool = pools.pool_of(message)
    if not pool:
        return None
    best = None
    for ladder in ladders:
        p = ladder.pool
        if p.name != pool or p.channel != message.channel or p.tenant_id not in (None, message.tenant_id):
            continue
        if ladder.from_domain and ladder.from_domain != _from_domain(message):
            continue
        if best is None or (ladder.from_domain and not best.from_domain):  # a domain's own ladder first
            best = ladder
    return best


_TAKE_SQL = """
UPDATE delivery_warmupcounter c
   SET sent = c.sent + g.granted, deferred = c.deferred + %(n)s - g.granted
  FROM (SELECT id, LEAST(%(n)s, GREATEST(0, %(cap)s - sent)) AS granted
          FROM delivery_warmupcounter
         WHERE ladder_id = %(ladder)s AND "group" = %(group)s AND day = %(day)s
           FOR UPDATE) g
 WHERE c.id = g.id
RETURNING g.granted
"""


def take(*, ladder_id: int, group: str, day: date, n: int, cap: int) -> int:
    """Atomically take up to `n` of today's `cap` slots; returns how many were granted.

    The row lock (FOR UPDATE re-reads the newest committed row under READ COMMITTED) makes the
    check-and-add one step across every process; the rest are counted as deferred.
    """
    params = {"ladder": ladder_id, "group": group, "day": day, "n": n, "cap": cap}
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SQL, params)
        row = cursor.fetchone()
        if row is None:  # first take of the day for this group
            cursor.execute('INSERT INTO delivery_warmupcounter (ladder_id, "group", day, sent, deferred) '
                           "VALUES (%(ladder)s, %(group)s, %(day)s, 0, 0) ON CONFLICT DO NOTHING", params)
            cursor.execute(_TAKE_SQL, params)
            row = cursor.fetchone()
    return int(row[0])


def _engagement(tenant_id: Any, addresses: list[str], now: datetime) -> dict[str, int]:
    scorer = settings.COMMS_ENGAGEMENT_SCORER
    if not scorer or not addresses:
        return {}
    since = now - timedelta(days=settings.COMMS_WARMUP_ENGAGEMENT_DAYS)
    return import_string(scorer)(tenant_id=tenant_id, addresses=addresses, since=since)


def next_day(now: datetime) -> datetime:
    """The next UTC midnight: when the ladder advances and today's deferrals are promoted."""
    return datetime.combine(now.astimezone(dt_timezone.utc).date() + timedelta(days=1), dtime.min,
                            tzinfo=dt_timezone.utc)


def gate(messages: list[Any], *, now: datetime) -> dict:
    """{message id: Decision(DEFER)} for the claimed rows over today's cap (the rest may be sent)."""
    ladders = _ladders()
    if not ladders or not messages:
        return {}
    today = now.astimezone(dt_timezone.utc).date()
    buckets: dict[tuple[WarmupLadder, str], list[Any]] = defaultdict(list)
    for m in messages:
        ladder = _ladder_of(m, ladders)
        if ladder is not None:
            group = mailbox_group(m.recipient_address)
            if cap_for(ladder, group, today) is not None:
                buckets[(ladder, group)].append(m)
    if not buckets:
        return {}
    held: dict = {}
    scores: dict[tuple[Any, str], int] = {}
    by_tenant: dict[Any, list[str]] = defaultdict(list)
    for rows in buckets.values():
        for m in rows:
            by_tenant[m.tenant_id].append(m.recipient_address)
    for tenant_id, addresses in by_tenant.items():
        for address, score in _engagement(tenant_id, addresses, now).items():
            scores[(tenant_id, address)] = score
    until = next_day(now)
    for (ladder, group), rows in buckets.items():
        cap = cap_for(ladder, group, today)
        reserve = math.floor(cap * settings.COMMS_WARMUP_RESERVE)
        rows.sort(key=lambda m: (m.priority, -scores.get((m.tenant_id, m.recipient_address), 0), m.id))
        preferred = [m for m in rows if m.priority <= 1 or scores.get((m.tenant_id, m.recipient_address), 0) > 0]
        first = {m.id for m in preferred}
        rest = [m for m in rows if m.id not in first]
        for part, part_cap in ((preferred, cap), (rest, cap - reserve)):
            if not part:
                continue
            granted = take(ladder_id=ladder.id, group=group, day=today, n=len(part), cap=max(0, part_cap))
            reason = (f"warm-up ladder held for pool {ladder.pool.name}" if ladder.state == WarmupLadder.State.HELD
                      else f"warm-up cap {cap}/day for {group} reached (pool {ladder.pool.name}, "
                           f"day {day_index(ladder, today) + 1})")
            for m in part[granted:]:
                held[m.id] = Decision(DEFER, code=CODE, reason=reason, until=until)
    return held


def progress(*, today: date | None = None, tenant_id: Any = None) -> list[dict]:
    """Per ladder and mailbox-provider group: day N of M, today's cap, sent and deferred today."""
    today = today or timezone.now().date()
    ladders = WarmupLadder.objects.select_related("pool").order_by("pool__name", "from_domain")
    if tenant_id is not None:
        ladders = ladders.filter(pool__tenant_id__in=[tenant_id]) | ladders.filter(pool__tenant__isnull=True)
    ladders = list(ladders)
    counts = {(c.ladder_id, c.group): c for c in WarmupCounter.objects.filter(ladder__in=ladders, day=today)}
    out = []
    for ladder in ladders:
        for group in GROUPS:
            schedule = schedule_for(ladder, group)
            counter = counts.get((ladder.id, group))
            cap = cap_for(ladder, group, today)
            out.append({
                "ladder_id": ladder.id, "pool": ladder.pool.name, "channel": ladder.pool.channel,
                "tenant": str(ladder.pool.tenant) if ladder.pool.tenant_id else "", "from_domain": ladder.from_domain,
                "group": group, "state": ladder.state, "day": min(day_index(ladder, today) + 1, len(schedule)),
                "days": len(schedule), "complete": day_index(ladder, today) >= len(schedule), "cap": cap,
                "sent": counter.sent if counter else 0, "deferred": counter.deferred if counter else 0,
            })
    return out


# -- administration ------------------------------------------------------------------------------------
def _validate_schedule(schedule: Any, field: str) -> list[int]:
    if not isinstance(schedule, (list, tuple)) or not schedule or len(schedule) > 366:
        raise errors.WarmupInvalid(f"{field} must be a list of 1-366 daily caps.", details={"field": field})
    for cap in schedule:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise errors.WarmupInvalid(f"{field}: every daily cap is a whole number ≥ 0.",
                                       details={"field": field, "value": cap})
    return list(schedule)


@transaction.atomic
def ladder_create(*, pool: str, tenant: Any = None, channel: str = "email", from_domain: str = "",
                  schedule: list[int] | None = None, group_schedules: dict | None = None,
                  started_on: date | None = None, actor: Any = None) -> WarmupLadder:
    """Start a ladder on an existing pool (seed 001's 4-week ramp unless a schedule is given)."""
    found = Pool.objects.filter(name=pool, channel=channel, tenant=tenant).first()
    if found is None:
        raise errors.PoolUnknown(f"No {channel} pool named '{pool}'.", details={"pool": pool})
    steps = _validate_schedule(DEFAULT_LADDER if schedule is None else schedule, "schedule")
    overrides = {}
    for group, caps in (group_schedules or {}).items():
        if group not in GROUPS:
            raise errors.WarmupInvalid(f"Unknown mailbox-provider group '{group}'.",
                                       details={"field": "group_schedules", "allowed": list(GROUPS)})
        overrides[group] = _validate_schedule(caps, f"group_schedules.{group}")
    domain = from_domain.strip().lower()
    if domain and not _DOMAIN.match(domain):
        raise errors.WarmupInvalid(f"'{from_domain}' is not a domain name.", details={"field": "from_domain"})
    if WarmupLadder.objects.filter(pool=found, from_domain=domain).exists():
        raise errors.WarmupInvalid("This pool already has a ladder for that domain.", details={"pool": pool})
    ladder = WarmupLadder.objects.create(pool=found, from_domain=domain, schedule=steps, group_schedules=overrides,
                                         started_on=started_on or timezone.now().date())
    audit_record(actor=actor, action="warmup.create", target=ladder, tenant=found.tenant,
                 diff={"schedule": steps, "group_schedules": overrides, "started_on": str(ladder.started_on)})
    clear_cache()
    return ladder


@transaction.atomic
def ladder_set_state(*, ladder: WarmupLadder, state: str, actor: Any = None, today: date | None = None) -> WarmupLadder:
    """Pause (the day stops advancing), hold (nothing is sent) or resume a ladder.

    Resuming a paused ladder moves its start forward by the paused days, so it picks up on the
    day it was paused at.
    """
    if state not in WarmupLadder.State.values:
        raise errors.WarmupInvalid(f"Unknown state '{state}'.", details={"allowed": WarmupLadder.State.values})
    today = today or timezone.now().date()
    ladder = WarmupLadder.objects.select_for_update().get(pk=ladder.pk)
    before = ladder.state
    if before == WarmupLadder.State.PAUSED and state != before and ladder.paused_on:
        ladder.started_on += today - ladder.paused_on
        ladder.paused_on = None
    if state == WarmupLadder.State.PAUSED and before != state:
        ladder.paused_on = today
    ladder.state = state
    ladder.save(update_fields=["state", "paused_on", "started_on"])
    audit_record(actor=actor, action=f"warmup.{state}", target=ladder, tenant=ladder.pool.tenant,
                 diff={"state": [before, state], "started_on": str(ladder.started_on)})
    clear_cache()
    return ladder

"""Tenant fairness inside the claim: each priority's batch is shared across the tenants with due work.

Without it, a claim takes a priority's rows oldest first, so a tenant that bulk-enqueued a million
P2 rows holds every P2 slot until its backlog drains, and another tenant's P2 message waits behind
it (a hosted competitor's published incident: one customer's 1.5 M workflows per minute delayed
every other customer). With it, a claim at one priority

1. finds the tenants with due queued rows at that priority: a skip scan over ``message_fair_idx``
   (priority, tenant, next_attempt_at) that reads one index entry per tenant, so its cost follows
   the number of tenants, not the backlog;
2. gives each a share of the batch in proportion to its weight (TenantQuota/plan ``weight``, 1 by
   default), at least one row each; with more tenants than rows, a random rotation picks which
   tenants go first this time (fair on average, no shared state to lose);
3. claims each tenant's oldest rows up to its share in ONE statement (a LATERAL index range per
   tenant, ``FOR UPDATE SKIP LOCKED`` as the plain claim), and the caller fills whatever is left of
   the batch with the plain claim (oldest first, any tenant), so capacity is never left idle.

P0 stays first for everyone: priorities are still probed in order by ``claim_batch``; fairness only
decides who shares a priority's slots. With one tenant due, the plain claim runs (nothing to share).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection

from delivery.models import Message

# One index entry per tenant: each step jumps to the first queued row of the next tenant id.
_DUE_TENANTS_SQL = """
WITH RECURSIVE t AS (
  (SELECT tenant_id, next_attempt_at FROM delivery_message
    WHERE status = 'queued' AND priority = %(priority)s
    ORDER BY tenant_id, next_attempt_at LIMIT 1)
  UNION ALL
  SELECT n.tenant_id, n.next_attempt_at FROM t CROSS JOIN LATERAL (
    SELECT tenant_id, next_attempt_at FROM delivery_message
     WHERE status = 'queued' AND priority = %(priority)s AND tenant_id > t.tenant_id
     ORDER BY tenant_id, next_attempt_at LIMIT 1) n
)
SELECT tenant_id FROM t WHERE next_attempt_at <= %(now)s
"""

# The tenant test is a one-value range, not "=", on purpose: with "=" the planner treats tenant_id as
# a constant, sees that message_claim_idx also yields (next_attempt_at, id) order, and may walk the big
# tenant's million rows there to find a small tenant's few (measured: 2.3 s per claim at 1 M rows).
# A range keeps tenant_id in the ORDER BY, which only message_fair_idx can give without a sort.
_FAIR_CLAIM_SQL = """
UPDATE delivery_message AS m
   SET status = 'sending', lease_owner = %(owner)s, lease_expires_at = %(lease_until)s,
       attempt_count = m.attempt_count + 1, updated_at = %(now)s
 WHERE m.id = ANY(ARRAY(
         SELECT x.id FROM unnest(%(tenants)s::uuid[], %(shares)s::int[]) AS s(tenant_id, share)
         CROSS JOIN LATERAL (
           SELECT id FROM delivery_message
            WHERE status = 'queued' AND priority = %(priority)s
              AND tenant_id >= s.tenant_id AND tenant_id <= s.tenant_id
              AND next_attempt_at <= %(now)s
            ORDER BY tenant_id, next_attempt_at, id
            LIMIT s.share
            FOR UPDATE SKIP LOCKED) x))
RETURNING m.*
"""


def due_tenants(*, priority: int, now: datetime) -> list:
    """Tenant ids with at least one queued row at ``priority`` due by ``now`` (tenant id order)."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE_TENANTS_SQL, {"priority": priority, "now": now})
        return [row[0] for row in cursor.fetchall()]


def shares(tenants: list, *, limit: int, weight: Callable[[object], int],
           rng: random.Random | None = None) -> dict:
    """{tenant: rows it may take in this claim}: proportional to weight, at least one each, never more
    than ``limit`` in total. Tenants past the batch wait for a later claim; a random rotation of the
    order decides who, so none is always last."""
    if not tenants or limit <= 0:
        return {}
    order = list(tenants)
    start = (rng or random).randrange(len(order))
    order = order[start:] + order[:start]
    weights = {t: max(1, int(weight(t))) for t in order}
    total = sum(weights.values())
    out: dict = {}
    left = limit
    for t in order:
        if left <= 0:
            break
        n = min(left, max(1, math.floor(limit * weights[t] / total)))
        out[t] = n
        left -= n
    return out


def interleave(rows: list[Message]) -> list[Message]:
    """Round-robin across tenants (each tenant's rows oldest first): the worker starts its batch in
    this order, so a small tenant's row goes out with the first sends of the batch, not after the
    big tenant's share. (Housekeeping's crash accounting charges a dead worker's oldest stranded rows
    as the ones in flight; within a fair batch that is approximate, which only moves an attempt's
    charge and crash backoff between rows of that batch: every stranded row is sent again either way.)"""
    seen: dict = {}
    ranked = []
    for m in sorted(rows, key=lambda m: (m.next_attempt_at, m.id)):
        rank = seen[m.tenant_id] = seen.get(m.tenant_id, -1) + 1
        ranked.append((rank, m.next_attempt_at, m.id, m))
    return [r[-1] for r in sorted(ranked, key=lambda r: r[:3])]


def claim_fair(*, priority: int, limit: int, owner: str, now: datetime, lease_until: datetime,
               weight: Callable[[object], int]) -> list[Message] | None:
    """Claim up to ``limit`` rows of ``priority`` shared across the tenants with due work; None when
    fewer than two tenants are due (the plain claim is then the same thing, one query cheaper)."""
    if not settings.COMMS_TENANT_FAIRNESS:
        return None
    tenants = due_tenants(priority=priority, now=now)
    if len(tenants) < 2:
        return None
    share = shares(tenants, limit=limit, weight=weight)
    return interleave(list(Message.objects.raw(_FAIR_CLAIM_SQL, {
        "owner": owner, "lease_until": lease_until, "now": now, "priority": priority,
        "tenants": [str(t) for t in share], "shares": list(share.values()),
    })))

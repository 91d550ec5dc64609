"""The send-time side of tenant daily budgets: claimed rows past today's budget wait for tomorrow.

Work already accepted (events, journeys, campaign fan-out, a schedule set on an earlier day, a plan
lowered mid-day) is never dropped for a quota: the rows over the tenant's daily budget for their
channel are deferred to the next UTC midnight without spending an attempt (status 'deferred',
reason COMMS_TENANT_QUOTA), and housekeeping's promotion puts them back in the queue when that
window opens, where they take the new day's budget first (oldest first). One Redis call per
(tenant, channel) of a claimed batch, none for tenants without a daily budget.

P0 (emergency) rows are never held by a budget, daily or monthly (docs/insight.md, "Cost tracking and
envelopes"): they are counted against the day, and so take its room before anything else, but go.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from comms import quotas
from comms.enums import Priority
from delivery.costs import envelopes
from delivery.models import Message
from preferences.decision import DEFER, Decision

CODE = "COMMS_TENANT_QUOTA"


def gate(messages: list[Message], *, now: datetime) -> dict:
    """{message id: Decision(DEFER)} for the rows over their tenant's daily budget (the rest may go)."""
    groups: dict[tuple, list[Message]] = defaultdict(list)
    for m in messages:
        if m.channel in quotas.limits(m.tenant_id).daily_messages:
            groups[(m.tenant_id, m.channel)].append(m)
    held: dict = {}
    until = quotas.next_window(now)
    for (tenant_id, channel), rows in groups.items():
        urgent = [m for m in rows if m.priority == Priority.P0]
        if urgent:  # counted (the day's room shrinks), never held: an emergency outranks a budget
            quotas.take_sends(tenant_id=tenant_id, channel=channel, count=len(urgent), now=now, always=True)
        rows = [m for m in rows if m.priority != Priority.P0]
        rows.sort(key=lambda m: (m.priority, m.next_attempt_at, m.id))  # the most urgent take what is left
        granted = quotas.take_sends(tenant_id=tenant_id, channel=channel, count=len(rows), now=now) if rows else 0
        over = rows[granted:]
        if over:
            quotas.count_event(tenant_id, "deferred_daily", channel, len(over))
        for m in over:
            held[m.id] = Decision(DEFER, code=CODE, until=until,
                                  reason=f"tenant daily {channel} budget spent; waits for the next UTC day")
    # Monthly cost envelopes (delivery.costs.envelopes): the same shape, a deferral to next month.
    held.update(envelopes.gate([m for m in messages if m.id not in held], now=now))
    return held

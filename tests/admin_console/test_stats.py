"""Dashboard figures equal independent SQL over delivery_message / delivery_deliverylog."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from admin_console import stats
from comms.enums import Status
from delivery.models import Message
from delivery.services import SendSpec, drain_all, message_bulk_enqueue, message_cancel, message_enqueue
from tests.admin_console.seed import seed

pytestmark = pytest.mark.django_db
N = 12_000


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def independent_depth(tenant_id=None) -> dict:
    where = "WHERE tenant_id = %s" if tenant_id else ""
    rows = sql(f"""SELECT priority, channel, status,
                          CASE WHEN status IN ('blocked','deferred','failed','dead') THEN failure_code ELSE '' END,
                          count(*) FROM delivery_message {where} GROUP BY 1, 2, 3, 4""",
               [str(tenant_id)] if tenant_id else [])
    return {tuple(r[:4]): r[4] for r in rows}


def dashboard_depth(tenant_id=None) -> dict:
    return {(r.priority, r.channel, r.status, r.reason): r.n for r in stats.queue_depth(tenant_id=tenant_id)}


def independent_quality(now, tenant_id=None) -> dict:
    """Per (template, channel) event counts over the last 7 UTC days (today included), straight from the log."""
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
    where = " AND m.tenant_id = %s" if tenant_id else ""
    rows = sql(f"""
        SELECT m.template_key, m.channel,
               CASE WHEN l.event = 'bounced' AND l.data->>'bounce_type' = 'soft' THEN 'bounced_soft'
                    ELSE l.event END AS ev,
               count(*)
          FROM delivery_deliverylog l JOIN delivery_message m ON m.id = l.message_id
         WHERE l.at >= %s{where}
           AND (l.event NOT IN ('opened', 'clicked')  -- unique opens/clicks: a message's first one counts
                OR l.id = (SELECT min(id) FROM delivery_deliverylog f WHERE f.message_id = l.message_id
                            AND f.event = l.event))
         GROUP BY 1, 2, 3""", [since, *([str(tenant_id)] if tenant_id else [])])
    out: dict = {}
    for template_key, channel, event, n in rows:
        if event in stats.COUNTED:
            out.setdefault((template_key, channel), {})[event] = n
    return out


def check_everything(tenant, now):
    assert dashboard_depth() == independent_depth()
    assert dashboard_depth(tenant.pk) == independent_depth(tenant.pk)

    oldest = stats.oldest_queued(now=now)
    for p in range(5):
        (at,) = sql("SELECT min(next_attempt_at) FROM delivery_message WHERE status = 'queued' AND priority = %s "
                    "AND next_attempt_at <= %s", [p, now])[0]
        assert oldest[p] == (None if at is None else max(0.0, (now - at).total_seconds()))

    current = now.replace(second=0, microsecond=0)
    for window, minutes in (("last_5m", 4), ("last_1h", 59), ("last_24h", 1439)):
        expected = dict(((c, p, e), n) for c, p, e, n in sql(
            """SELECT m.channel, coalesce(nullif(m.provider, ''), l.provider), l.event, count(*)
                 FROM delivery_deliverylog l JOIN delivery_message m ON m.id = l.message_id
                WHERE l.at >= %s AND l.event NOT IN ('bounced', 'opened', 'clicked') GROUP BY 1, 2, 3""",
            [current - timedelta(minutes=minutes)]))
        got = {(r.channel, r.provider, r.event): getattr(r, window) for r in stats.event_rates(now=now)
               if getattr(r, window) and r.event not in ("bounced", "bounced_soft", "opened", "clicked")}
        assert got == expected, window

    expected = independent_quality(now)
    got = {q.key: {e: n for e, n in q.counts.items() if n} for q in stats.quality(by="template", now=now)}
    assert got == expected
    total = stats.quality(by="total", now=now)[0]
    assert total.n("sent") == sum(v.get("sent", 0) for v in expected.values())
    assert total.pct("complained") == round(100 * total.n("complained") / total.n("sent"), 3)


def test_figures_equal_sql_counts_before_and_after_rollup(tenant, other_tenant, smtp_sink):
    now = timezone.now()
    seed(n=N, tenant=tenant, other_tenant=other_tenant, now=now)
    # The real code paths on top: single sends, a bulk fan-out, sending, a cancel.
    for i in range(5):
        message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"live{i}@example.com", subject="s",
                                                     body="b", priority=0))
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="bulk", body="b", priority=3),
                         recipients=[{"to": f"bulk{i}@example.com"} for i in range(300)])
    seeded_queued = Message.objects.filter(status=Status.QUEUED, recipient_address__startswith="user")
    seeded_queued.update(next_attempt_at=now + timedelta(days=1))  # keep the seeded backlog out of the drain
    drain_all()
    victim, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="late@example.com", subject="s",
                                                             body="b", scheduled_for=now + timedelta(hours=1)))
    message_cancel(tenant=tenant, message_id=victim.id)
    # Deleting rows (purges) takes them off the gauge; their history stays counted (no logs here).
    for i in range(3):
        message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"gone{i}@example.com",
                                                     subject="s", body="b", scheduled_for=now + timedelta(hours=2)))
    Message.objects.filter(recipient_address__startswith="gone").delete()
    now = timezone.now()
    check_everything(tenant, now)
    assert stats.rollup(now=now)
    (pending,) = sql("SELECT count(*) FROM admin_console_queuegauge_delta")[0]
    assert pending == 0
    check_everything(tenant, now)
    # And changes after a rollup land on top of it.
    Message.objects.filter(status=Status.QUEUED, priority=4).update(status=Status.CANCELLED)
    check_everything(tenant, now)

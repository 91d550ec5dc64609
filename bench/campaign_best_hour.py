"""What best-hour scheduling adds to a campaign's fan-out: the same audience fanned out with the
schedule "now" and with "best hour within 24 h", alternated, medians reported.

    python bench/campaign_best_hour.py [N recipients, default 20000] [rounds, default 3]

Setup (not measured): N directory recipients; 30 % of them get an engagement history (one sent
message each and 2-12 opens at a personal hour over the last 60 days, written with SQL), so the
planner reads real MessageEvent rows and most of the audience has none (as in life).
Measured per fan-out (one writer thread, so this process's CPU is the whole Python cost):
wall time, this process's CPU time, and PostgreSQL's share (wall minus CPU, roughly), per 1,000
recipients; and for best-hour the number of chunks written (rows are regrouped by hour).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.campaign import make_directory, make_template  # noqa: E402
from bench.run import Env  # noqa: E402

def seed_history() -> tuple[int, int]:
    """30 % of the directory: one sent message each and 2-12 opens at a personal hour (setup, ORM bulk)."""
    import random
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from comms.models import Recipient
    from comms.services import tenant_get_default
    from delivery.models import Message
    from tracking.models import MessageEvent

    rng = random.Random(22)
    tenant = tenant_get_default()
    today = timezone.now().replace(hour=0, minute=7, second=0, microsecond=0)
    people = [(pk, email) for pk, email in Recipient.objects.values_list("pk", "email") if rng.random() < 0.3]
    messages, events = [], []
    for pk, email in people:
        message = Message(tenant=tenant, recipient_id=pk, recipient_address=email, channel="email",
                          category="marketing", priority=3, status="sent", template_key="winter_sale",
                          sent_at=today - timedelta(days=61))
        messages.append(message)
        hour = rng.randrange(24)
        for g in range(rng.randint(2, 12)):
            events.append(MessageEvent(tenant=tenant, message=message, event_type="opened", provider="comms",
                                       timestamp=today - timedelta(days=5 * (g + 1)) + timedelta(hours=hour)))
    Message.objects.bulk_create(messages, batch_size=5000)
    MessageEvent.objects.bulk_create(events, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE delivery_message")
        cursor.execute("ANALYZE tracking_messageevent")
    return len(messages), len(events)


def one_fanout(n: int, best: bool, round_no: int) -> tuple[float, float, int]:
    from comms.campaigns.fanout import campaign_fanout
    from comms.campaigns.services import campaign_create, campaign_schedule, campaigns_tick
    from comms.services import tenant_get_default

    tenant = tenant_get_default()
    schedule = {"best_within_hours": 24} if best else {}
    campaign = campaign_create(tenant=tenant, data={
        "name": f"r{round_no}-{'best' if best else 'now'}", "channels": ["email"], "template": "winter_sale",
        "variables": {"discount": 20}, "audience": {"segment": "everyone"}, "schedule": schedule})
    campaign_schedule(tenant=tenant, campaign_id=campaign.id)
    campaigns_tick()
    wall, cpu = time.perf_counter(), time.process_time()
    stats = campaign_fanout(campaign_id=campaign.id, writers=1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert stats.rows == n, stats
    from comms.campaigns.services import campaign_cancel

    campaign_cancel(tenant=tenant, campaign_id=campaign.id)  # nothing of it is sent; its rows stay (realistic bloat)
    return wall, cpu, stats.chunks


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    env = Env()
    try:
        from comms.campaigns.models import Segment
        from comms.services import tenant_get_default

        print(f"directory: {n:,} recipients in {make_directory(n):.1f} s (setup)")
        make_template()
        Segment.objects.create(tenant=tenant_get_default(), name="everyone",
                               filter={"all": [{"field": "locale", "op": "eq", "value": "en-US"}]})
        with_history, events = seed_history()
        print(f"history: {with_history:,} recipients with {events:,} opens (setup)")
        figures: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
        one_fanout(n, False, 0)  # warm-up (caches, plans); not counted
        for r in range(1, rounds + 1):
            for best in (False, True):
                figures[best].append(one_fanout(n, best, r))
        per_k = 1000 / n
        for best in (False, True):
            wall = statistics.median(w for w, _, _ in figures[best])
            cpu = statistics.median(c for _, c, _ in figures[best])
            chunks = statistics.median(k for _, _, k in figures[best])
            print(f"{'best hour (24 h)' if best else 'now':>16}: wall {wall * per_k * 1000:6.1f} ms, "
                  f"Python CPU {cpu * per_k * 1000:6.1f} ms, rest (PostgreSQL, waits) "
                  f"{(wall - cpu) * per_k * 1000:6.1f} ms per 1,000 recipients; {chunks:.0f} chunks "
                  f"(median of {rounds}: wall {[round(w, 2) for w, _, _ in figures[best]]} s)")
    finally:
        env.close()


if __name__ == "__main__":
    main()

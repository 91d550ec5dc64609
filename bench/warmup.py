"""What a warm-up ladder costs the send path (issue 19 item 5). Prints figures, asserts nothing.

    python bench/warmup.py [rows] [rounds]

In one process against embedded PostgreSQL and the SMTP sink: the same marketing bulk send
(addresses spread over Gmail, Yahoo, Outlook and other domains) drained with no ladder, with a
ladder whose caps are never reached (the pure cost of asking: one counter UPDATE per batch and
group, plus the engagement query), and with a ladder that defers half (the deferral writes).
CPU time (process_time) per claimed message, median of `rounds` alternating runs; plus the gate
alone per 200-row batch.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Env  # noqa: E402

DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "example.com")


def main(rows: int, rounds: int) -> None:
    env = Env()
    try:
        deadline = time.monotonic() + 60  # the sink is a Django process: on a busy machine it starts slowly
        while True:
            try:
                socket.create_connection(("127.0.0.1", env.sink_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        from django.db import connection
        from django.utils import timezone

        from comms.services import tenant_get_default
        from delivery.deliverability import pools, warmup
        from delivery.models import WarmupLadder
        from delivery.services import SendSpec, drain_all, message_bulk_enqueue
        from delivery.services.engine import claim_batch

        tenant = tenant_get_default()
        pools.pool_create(name="marketing", categories=["marketing"])

        def enqueue(tag: str) -> None:
            message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Hi", body="Hello",
                                                              priority=3, category="marketing"),
                                 recipients=[{"to": f"{tag}{i}@{DOMAINS[i % 4]}"} for i in range(rows)])

        def empty() -> None:  # TRUNCATE: the ORM's cascading delete of thousands of rows is the slow part
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE delivery_message, delivery_deliverylog, delivery_warmupcounter CASCADE")

        def ladder(cap: int | None) -> None:
            WarmupLadder.objects.all().delete()
            if cap is not None:
                warmup.ladder_create(pool="marketing", schedule=[cap], started_on=timezone.now().date())
            warmup.clear_cache()

        def run(cap: int | None, tag: str) -> dict:
            ladder(cap)
            empty()
            enqueue(tag)
            wall, cpu = time.perf_counter(), time.process_time()
            stats = drain_all()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            return {"cpu_us": cpu / stats.claimed * 1e6, "wall_us": wall / stats.claimed * 1e6,
                    "sent": stats.sent, "deferred": stats.deferred}

        scenarios = {"no_ladder": None, "ladder_under_cap": 10**9, "ladder_defers_half": rows // 8}
        results: dict[str, list[dict]] = {name: [] for name in scenarios}
        for r in range(rounds):
            for name, cap in scenarios.items():
                results[name].append(run(cap, f"{name[:3]}{r}x"))
        out = {}
        for name, runs in results.items():
            out[name] = {"cpu_us_per_msg": round(statistics.median(x["cpu_us"] for x in runs), 1),
                         "wall_us_per_msg": round(statistics.median(x["wall_us"] for x in runs), 1),
                         "sent": runs[-1]["sent"], "deferred": runs[-1]["deferred"]}
        # The gate alone, on claimed 200-row batches (claimed, so nothing else touches them).
        for name, cap in (("gate_no_ladder", None), ("gate_ladder", 10**9)):
            ladder(cap)
            empty()
            enqueue(f"g{name[-3:]}")
            batches = []
            while batch := claim_batch(max_priority=3, limit=200, owner="bench"):
                batches.append(batch)
            now = timezone.now()
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                warmup.gate(batch, now=now)
            n = sum(len(b) for b in batches)
            out[name] = {"cpu_us_per_msg": round((time.process_time() - cpu) / n * 1e6, 1),
                         "wall_us_per_msg": round((time.perf_counter() - wall) / n * 1e6, 1)}
        print("warm-up ladder cost:", json.dumps({"rows": rows, "rounds": rounds, **out}))
    finally:
        env.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)

"""Tenant fairness (issue 21): tenant B's P2 latency while tenant A's P2 backlog drains. Figures only.

    python bench/fairness.py [--backlog 1000000] [--phase-seconds 60] [--rounds 2] [--relay-ms 50]

Tenant A bulk-enqueues ``--backlog`` P2 emails through the bulk service (COPY). Then tenant B sends
one P2 email per second through the HTTP API (gunicorn) while `make run`'s bulk pool (one Celery
worker, 2 processes, queues p2-p4) drains A's backlog into an SMTP sink answering each DATA after
``--relay-ms``. Phases alternate fairness off / on (the workers restart with COMMS_TENANT_FAIRNESS
each phase) so both see the same machine, table and load; each phase reports B's accept → sent
latency (created_at → sent_at) p50/p99/max, B's messages not sent by the end of the phase, and A's
send rate. It also prints the claim's plans and timings with the backlog in place against an empty
table (the due-tenant skip scan and the fair claim, EXPLAIN ANALYZE, rolled back).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BODY, SUBJECT, Env, pct  # noqa: E402


def _tenants():
    from comms.models import Scope, Tenant
    from comms.services import api_key_create

    a = Tenant.objects.create(slug="tenant-a", name="A (bulk sender)")
    b = Tenant.objects.create(slug="tenant-b", name="B (steady sender)")
    return a, b, api_key_create(tenant=b, name="bench", scopes=[Scope.MESSAGES_SEND])[1]


def _enqueue(tenant, n: int) -> float:
    from delivery.services import SendSpec, message_bulk_enqueue

    started = time.perf_counter()
    for offset in range(0, n, 100_000):
        rows = [{"to": f"a{i}@example.com"} for i in range(offset, min(n, offset + 100_000))]
        message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject=SUBJECT, body=BODY, priority=2),
                             recipients=rows)
    return time.perf_counter() - started


def _explain(label: str) -> dict:
    """Plans and times of the two fairness queries on the table as it is now (rolled back)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from delivery.services import fairness

    now = timezone.now()
    out = {}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + fairness._DUE_TENANTS_SQL,
                           {"priority": 2, "now": now})
            plan = cursor.fetchone()[0][0]
            out["due_tenants_ms"] = round(plan["Execution Time"], 3)
            out["due_tenants_buffers"] = plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
            tenants = fairness.due_tenants(priority=2, now=now)
            share = fairness.shares(tenants, limit=200, weight=lambda t: 1) if tenants else {}
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + fairness._FAIR_CLAIM_SQL, {
                "owner": "explain", "lease_until": now, "now": now, "priority": 2,
                "tenants": [str(t) for t in share], "shares": list(share.values())})
            claim = cursor.fetchone()[0][0]
            out["fair_claim_ms"] = round(claim["Execution Time"], 3)
            text = json.dumps(claim)
            out["fair_claim_uses_index"] = "message_fair_idx" in text
            out["fair_claim_seq_scan"] = "Seq Scan" in text
            out["due_tenants"] = len(tenants)
            from delivery.services.outcomes import _CLAIM_SQL

            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _CLAIM_SQL, {
                "owner": "explain", "lease_until": now, "now": now, "priority": 2, "limit": 200})
            out["plain_claim_200_ms"] = round(cursor.fetchone()[0][0]["Execution Time"], 3)
        transaction.set_rollback(True)
    print(f"claim cost ({label}):", json.dumps(out))
    return out


def _phase(env: Env, *, fair: bool, seconds: int, url: str, key: str, a_id, b_id) -> dict:
    import httpx
    from django.db import connection

    from delivery.models import Message

    worker = env.celery("p2,p3,p4", 2, f"bulk-{'on' if fair else 'off'}-{time.monotonic_ns()}", nice=5)
    os.environ.pop("COMMS_TENANT_FAIRNESS", None)
    # Sample only once the new pool sends: on a loaded machine Celery takes far more than a few seconds
    # to start, and samples taken before would measure its start-up, not the claim.
    a_before = Message.objects.filter(tenant_id=a_id, status="sent").count()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        time.sleep(1)
        connection.close()
        if Message.objects.filter(tenant_id=a_id, status="sent").count() > a_before + 400:
            break
    a_before = Message.objects.filter(tenant_id=a_id, status="sent").count()
    ids, started = [], time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        for i in range(seconds):
            tick = time.perf_counter()
            r = client.post("/api/v1/messages", json={"channel": "email", "to": f"b{len(ids)}-{i}@example.com",
                                                      "subject": "B", "body": "steady", "priority": "P2"})
            ids.append(r.json()["id"])
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
    time.sleep(3)  # the last sample's send
    elapsed = time.perf_counter() - started
    connection.close()
    a_sent = Message.objects.filter(tenant_id=a_id, status="sent").count() - a_before
    rows = list(Message.objects.filter(id__in=ids).values_list("created_at", "sent_at"))
    env.stop(worker)
    env.procs.remove(worker)
    lat = [(s - c).total_seconds() for c, s in rows if s is not None]
    unsent = sum(1 for _c, s in rows if s is None)
    result = {"fairness": "on" if fair else "off", "b_samples": len(ids), "b_sent": len(lat), "b_unsent": unsent,
              "b_p50_s": round(pct(lat, 50), 3) if lat else None, "b_p99_s": round(pct(lat, 99), 3) if lat else None,
              "b_max_s": round(max(lat), 3) if lat else None, "a_sent_per_s": round(a_sent / elapsed, 1),
              "load": [round(x, 1) for x in os.getloadavg()]}
    print("phase:", json.dumps(result), flush=True)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--phase-seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--relay-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    env = Env(relay_ms=args.relay_ms)
    try:
        empty = _explain("empty table")
        a, b, key = _tenants()
        took = _enqueue(a, args.backlog)
        print(f"tenant A: {args.backlog} P2 rows enqueued in {took:.1f} s", flush=True)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE delivery_message")
        from delivery.services import SendSpec, message_enqueue

        message_enqueue(tenant=b, spec=SendSpec(channel="email", to="b-first@example.com", subject="B", body="b"))
        full = _explain(f"{args.backlog} queued rows of A, 1 of B")
        url = env.web(workers=2, threads=4)
        phases = []
        for _ in range(args.rounds):
            for fair in (False, True):
                os.environ["COMMS_TENANT_FAIRNESS"] = "true" if fair else "false"
                phases.append(_phase(env, fair=fair, seconds=args.phase_seconds, url=url, key=key,
                                     a_id=a.id, b_id=b.id))
        summary = {}
        for mode in ("off", "on"):
            runs = [p for p in phases if p["fairness"] == mode]
            p99s = [p["b_p99_s"] for p in runs if p["b_p99_s"] is not None]
            summary[mode] = {"phases": len(runs), "b_unsent": sum(p["b_unsent"] for p in runs),
                             "b_p99_s_median": statistics.median(p99s) if p99s else None,
                             "a_sent_per_s_median": statistics.median(p["a_sent_per_s"] for p in runs)}
        print("summary:", json.dumps({"backlog": args.backlog, "relay_ms": args.relay_ms, "claim_empty": empty,
                                      "claim_full": full, **summary}))
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Inbound webhook figures: intake (verify + store raw + answer) and processing rates; prints, asserts nothing.

    python bench/webhooks.py [N]

In one process (Django's test client, no HTTP server): N signed SendGrid posts of one event each,
processed (normalise, dedupe, status, log, metrics); then the same N events again as posts of 500,
processed (all duplicates now). For both processing phases it prints events/s, this process's CPU
per event, the PostgreSQL backend's CPU per event (read from /proc) and SQL statements per event. A throwaway embedded
PostgreSQL + Redis, like bench/run.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comms.devserver.embedded import start_for_tests  # noqa: E402


def _backend_cpu() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (the embedded server is local)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _processing(run) -> tuple[float, float, int, float]:
    """(wall s, this process's CPU s, SQL statements, PostgreSQL backend CPU s) of one processing run
    (BENCH_PROFILE=1: a profile)."""
    from django.db import connection

    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        if not os.environ.get("BENCH_SQL"):
            return execute(sql, params, many, context)
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:  # BENCH_SQL=1: each statement's wall time
            print(f"  {(time.perf_counter() - began) * 1000:8.1f} ms  {' '.join(sql.split())[:100]}")

    backend = _backend_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(count):
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(run)
            pstats.Stats(prof).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(25)
        else:
            run()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return wall, cpu, statements, _backend_cpu() - backend


def main(n: int) -> dict:
    pg, redis, root = start_for_tests()
    os.environ.update({"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "COMMS_VAR_DIR": str(root / "var"),
                       "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "ERROR",
                       "COMMS_WEBHOOK_RATES": json.dumps({"default": "100000000/min"}),
                       "COMMS_PUBLIC_RATE": "100000000/min"})
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client
        from django.utils import timezone

        call_command("migrate", verbosity=0)
        from comms.services import tenant_get_default
        from delivery.models import Message
        from tests.webhooks.signers import SendGridSigner
        from webhooks.models import WebhookEvent
        from webhooks.services import webhooks_process_pending

        tenant = tenant_get_default()
        now = timezone.now()
        Message.objects.bulk_create([Message(tenant=tenant, channel="email", recipient_address=f"u{i}@example.com",
                                             status="sent", provider="esp", provider_ref=f"ref-{i}", sent_at=now)
                                     for i in range(n)], batch_size=5000)
        sg = SendGridSigner(settings)
        client = Client()
        events = [json.loads(sg.events(ref=f"ref-{i}", address=f"u{i}@example.com", event="delivered",
                                       event_id=f"evt-{i}"))[0] for i in range(n)]
        started = time.perf_counter()
        for e in events:
            sg.sign(json.dumps([e])).send(client)
        single_s = time.perf_counter() - started
        process_s, process_cpu, process_q, process_pg = _processing(webhooks_process_pending)
        started = time.perf_counter()
        for i in range(0, n, 500):  # the same events again, batched: all duplicates now
            sg.sign(json.dumps(events[i:i + 500])).send(client)
        batch_s = time.perf_counter() - started
        dup_s, dup_cpu, dup_q, dup_pg = _processing(webhooks_process_pending)
        result = {
            "events": n, "intake_single_req_per_s": round(n / single_s, 1),
            "process_new_events_per_s": round(n / process_s, 1),
            "process_new_cpu_us_per_event": round(process_cpu / n * 1e6),
            "process_new_queries_per_event": round(process_q / n, 3),
            "process_new_pg_cpu_us_per_event": round(process_pg / n * 1e6),
            "intake_batched_events_per_s": round(n / batch_s, 1),
            "process_duplicate_events_per_s": round(n / dup_s, 1),
            "process_duplicate_cpu_us_per_event": round(dup_cpu / n * 1e6),
            "process_duplicate_queries_per_event": round(dup_q / n, 3),
            "process_duplicate_pg_cpu_us_per_event": round(dup_pg / n * 1e6),
            "stored_rows": WebhookEvent.objects.count(), "delivered": Message.objects.filter(status="delivered").count(),
        }
        print("webhooks:", json.dumps(result))
        return result
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

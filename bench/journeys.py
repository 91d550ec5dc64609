"""Journeys at scale: segment entry through COPY, timers coming due together, event matching.

    python bench/journeys.py [N]          # N recipients (default 1,000,000)

Environment: BENCH_ADVANCE (runs whose timers come due within the same minute, default 20,000; the
rest of the N runs wait on later timers or on an event, so the table and its indexes are full-size),
BENCH_WORKERS (advance worker processes, default 2), BENCH_BATCH (runs claimed per batch, default
500), BENCH_PROFILE=1 (cProfile one batch in this process and print where the time goes).

Prints: directory write (setup), segment → runs entry (COPY) time and rows/s; runs advanced per
second by the workers (wall and CPU per run: workers and PostgreSQL), the delay from each timer's
due time to its message being queued, i.e. committed and visible to a worker (p50/p99; a trigger
logs each insert and this process stamps it when it becomes visible, within 0.5 s, so neither the
batch's shared `now` nor its one transaction can flatter it); the plan of the event-to-waiting-runs
match; the admin's list and funnel read at full size.
Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DUE_SPREAD = 60.0  # seconds: every measured timer comes due within the same minute
DEFINITION = {
    "entry": {"segment": "everyone"},
    "start": "w",
    "steps": {
        "w": {"type": "wait", "seconds": 3600, "next": "email"},
        "email": {"type": "send", "template": "winter_sale", "channels": ["email"], "category": "transactional",
                  "next": "later"},
        "later": {"type": "wait", "event": "order.placed", "timeout_seconds": 86400, "next": "bye"},
        "bye": {"type": "exit"},
    },
}


def worker(batch: int) -> None:
    """One advance process: claim and advance due runs until stopped (what the router's task does)."""
    import django

    django.setup()
    from comms.router.journeys import journeys_advance

    while True:
        if journeys_advance(limit=batch).claimed == 0:
            time.sleep(0.05)


def sql(query: str, params: list | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall() if cursor.description else []


def timers_set(advance: int, table: str) -> None:
    """Put every run in its first wait (as the engine leaves it): `advance` of them due within the next
    minute, half the rest due tomorrow, half waiting for order.placed (the event-match population)."""
    sql(f"""WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM {table})
            UPDATE {table} r SET state = 'waiting', seq = 1,
              next_due_at = CASE WHEN n.n <= %s THEN now() + interval '5 seconds'
                                                   + (n.n::float / %s * %s) * interval '1 second'
                                 ELSE now() + interval '1 day' END,
              step = CASE WHEN n.n <= %s OR n.n %% 2 = 0 THEN 'w' ELSE 'later' END,
              waiting_for = CASE WHEN n.n > %s AND n.n %% 2 = 1 THEN 'order.placed' ELSE '' END
            FROM numbered n WHERE n.id = r.id""", [advance, advance, DUE_SPREAD, advance, advance])
    sql(f"VACUUM ANALYZE {table}")
    sql(f"CREATE TABLE bench_due AS SELECT id::text AS run, next_due_at AS due FROM {table} "
        f"WHERE next_due_at < now() + interval '1 hour'")
    sql("CREATE TABLE bench_queued (run text, at timestamptz NOT NULL DEFAULT clock_timestamp())")
    sql("CREATE TABLE bench_seen (run text PRIMARY KEY, at timestamptz NOT NULL)")
    sql("""CREATE FUNCTION bench_queued_fn() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO bench_queued (run) VALUES (NEW.metadata->>'journey_run'); RETURN NEW; END $$""")
    sql("CREATE TRIGGER bench_queued_tr AFTER INSERT ON delivery_message FOR EACH ROW EXECUTE FUNCTION "
        "bench_queued_fn()")


def explain_event_match(tenant) -> None:
    """The query journeys_on_event runs for an incoming event, planned at full size."""
    from django.db.models import Q

    from comms.models import Recipient
    from comms.router.models import JourneyRun

    who = sql(f"SELECT recipient_id FROM {JourneyRun._meta.db_table} WHERE waiting_for = 'order.placed' LIMIT 1")
    recipients = list(Recipient.objects.filter(pk=who[0][0]))
    touched = (JourneyRun.objects.filter(tenant=tenant, recipient__in=recipients)
               .filter(Q(state=JourneyRun.State.WAITING, waiting_for="order.placed")
                       | Q(state__in=list(JourneyRun.LIVE), version__goal_events__contains=["order.placed"])))
    plan = touched.explain(analyze=True)
    print("event match plan (journeys_on_event, one recipient, order.placed):")
    print("  " + plan.replace("\n", "\n  "))
    scan = "Seq Scan on router_journeyrun" in plan
    print(f"  -> {'SEQ SCAN (aim missed)' if scan else 'index only, no sequential scan of the runs'}")
    from django.utils import timezone

    from comms.router.journeys import journeys_on_event

    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic():  # as event_ingest calls it
        out = journeys_on_event(tenant=tenant, name="order.placed", payload={}, recipient_ids=[recipients[0].external_id],
                                event_id="bench", now=timezone.now())
    print(f"  journeys_on_event for that recipient: {(time.perf_counter() - started) * 1000:.1f} ms -> {out}")


def admin_reads(journey) -> None:
    """The admin's journey list (run counts per journey) and funnel, timed at full size."""
    from django.test import RequestFactory

    from comms.router.journey_admin import JourneyAdmin, journey_funnel
    from comms.router.models import Journey

    site_admin = JourneyAdmin(Journey, None)
    request = RequestFactory().get("/admin/router/journey/")
    started = time.perf_counter()
    rows = [(j.key, j.n_entered, j.n_waiting) for j in site_admin.get_queryset(request)]
    listed = time.perf_counter() - started
    started = time.perf_counter()
    funnel = journey_funnel(journey=journey, version=journey.active_version)
    print(f"admin reads: journey list with run counts {listed:.2f} s {rows}; funnel {time.perf_counter() - started:.2f} s "
          f"(runs {funnel['runs']['entered']:,})")


def profile_batch(batch: int) -> None:
    import cProfile
    import pstats

    from comms.router.journeys import journeys_advance

    sql("UPDATE router_journeyrun SET next_due_at = now() - interval '1 second' WHERE id IN ("
        "SELECT id FROM router_journeyrun WHERE step = 'w' AND next_due_at > now() + interval '1 hour' LIMIT %s)",
        [batch + 1])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        journeys_advance(limit=1)
    print(f"one run advanced (claim, wait elapsed, send, next wait): {len(queries)} SQL statements")
    for q in queries.captured_queries:
        print("   ", " ".join(q["sql"].split())[:150])
    prof = cProfile.Profile()
    started, cpu = time.perf_counter(), time.process_time()
    prof.enable()
    stats = journeys_advance(limit=batch)
    prof.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"profile: {stats.advanced} runs advanced in one process, {wall / max(stats.advanced, 1) * 1000:.2f} ms "
          f"wall and {cpu / max(stats.advanced, 1) * 1000:.2f} ms Python CPU per run (profiler on)")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    advance = min(n, int(os.environ.get("BENCH_ADVANCE", "20000")))
    workers_n = int(os.environ.get("BENCH_WORKERS", "2"))
    batch = int(os.environ.get("BENCH_BATCH", "500"))
    from bench.campaign import make_directory, make_template
    from bench.run import Env, cpu_seconds, pct

    env = Env()
    try:
        from comms.campaigns.models import Segment
        from comms.router.journey_bulk import journey_enter_segment_copy
        from comms.router.journeys import journey_save
        from comms.router.models import JourneyRun
        from comms.services import tenant_get_default

        tenant = tenant_get_default()
        print(f"directory: {n:,} recipients written in {make_directory(n):.1f} s (setup)")
        make_template()
        Segment.objects.create(tenant=tenant, name="everyone", filter={"all": [{"field": "locale", "op": "eq",
                                                                                "value": "en-US"}]})
        version, _ = journey_save(tenant=tenant, key="winter", definition=DEFINITION)
        load = os.getloadavg()[0]
        pg_cpu = cpu_seconds(env.pg_pid())
        started, cpu = time.perf_counter(), time.process_time()
        stats = journey_enter_segment_copy(journey=version.journey)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        pg_cpu = cpu_seconds(env.pg_pid()) - pg_cpu
        print(f"segment entry (COPY): {stats.created:,} runs in {stats.chunks} chunks, {wall:.1f} s "
              f"({stats.created / wall:,.0f} runs/s; CPU {cpu:.1f} s Python + {pg_cpu:.1f} s PostgreSQL; "
              f"load average {load:.1f} at start)")

        table = JourneyRun._meta.db_table
        timers_set(advance, table)
        explain_event_match(tenant)
        admin_reads(version.journey)

        load = os.getloadavg()[0]
        pg_cpu = cpu_seconds(env.pg_pid())
        procs = [env.spawn([sys.executable, __file__, "worker", str(batch)]) for _ in range(workers_n)]
        t0 = time.perf_counter()
        done, last_print = 0, t0
        while done < advance and time.perf_counter() - t0 < float(os.environ.get("BENCH_TIMEOUT", "3600")):
            time.sleep(0.5)
            # A message counts as queued when a worker could claim it: when its transaction (the whole
            # batch's) has committed and it becomes visible here, stamped to within this loop's 0.5 s.
            sql("INSERT INTO bench_seen (run, at) SELECT q.run, clock_timestamp() FROM bench_queued q "
                "ON CONFLICT DO NOTHING")
            done = sql("SELECT count(*) FROM bench_seen")[0][0]
            if time.perf_counter() - last_print > 30:
                print(f"  … {done:,} queued after {time.perf_counter() - t0:.0f} s", flush=True)
                last_print = time.perf_counter()
        wall = time.perf_counter() - t0
        worker_cpu = sum(cpu_seconds(p.pid) for p in procs)
        pg_cpu = cpu_seconds(env.pg_pid()) - pg_cpu
        for proc in procs:
            env.stop(proc)
        first, last = sql("SELECT min(at), max(at) FROM bench_seen")[0]
        span = (last - first).total_seconds() if first else 0.0
        delays = [row[0] for row in sql("SELECT extract(epoch FROM q.at - d.due)::float FROM bench_seen q "
                                        "JOIN bench_due d ON d.run = q.run")]
        inserted = [row[0] for row in sql("SELECT extract(epoch FROM q.at - d.due)::float FROM bench_queued q "
                                          "JOIN bench_due d ON d.run = q.run")]
        print(f"advance: {done:,} of {advance:,} due timers advanced (wait -> send -> next wait) by {workers_n} "
              f"worker processes, batch {batch}, in {wall:.0f} s; first to last message {span:.0f} s -> "
              f"{done / max(span, 1e-9):,.0f} runs advanced/s (aim 20,000/s); load average {load:.1f} at start")
        print(f"  CPU per run advanced: {worker_cpu / max(done, 1) * 1000:.2f} ms workers + "
              f"{pg_cpu / max(done, 1) * 1000:.2f} ms PostgreSQL")
        if delays:
            print(f"  due -> queued: p50 {pct(delays, 50):.1f} s, p99 {pct(delays, 99):.1f} s, max {max(delays):.1f} s "
                  f"(aim p99 <= 30 s; committed and visible)")
            print(f"  due -> row inserted (before its batch commits): p50 {pct(inserted, 50):.1f} s, "
                  f"p99 {pct(inserted, 99):.1f} s")
        if os.environ.get("BENCH_PROFILE"):
            profile_batch(batch)
    finally:
        env.close()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        worker(int(sys.argv[2]))
    else:
        main()

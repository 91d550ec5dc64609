"""The four reports at 10 M messages: time each endpoint (JSON and CSV, 30 days and 1 day) and EXPLAIN it.

    python bench/analytics_seed.py DIR 10000000      # once: the scratch database (see that file)
    python bench/analytics_10m.py DIR [runs]         # figures (median and p95 of `runs`, default 10)
    python bench/analytics_10m.py DIR --write        # what the outcome path pays: one flush of 100 outcomes
    python bench/analytics_10m.py DIR --engagement   # the backfill's time (rolled back) and what one applied
                                                     # event set pays for the engagement upsert (1 and 100 events)

Migrates DIR's database to this branch (tracking's migration 0004 builds the engagement aggregate from the
recorded events; a database whose tracking_engagementday is still empty gets the same backfill here, timed),
seeds the outcome aggregate (delivery_outcomeday) from the
seeded messages once, exactly as the outcome path would have written it (queue wait from the rows;
provider call times drawn per provider, log-normal), then times every report through the Django
test client after 3 warm-ups, and EXPLAINs every statement each report runs: no plan may read
delivery_message. For comparison it runs the previous performance query (percentile_cont over the
period's messages) and the previous engagement query (GROUPING SETS over the period's events) once.
Prints figures; asserts nothing. Recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone as tz
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIST_AGG = """
CREATE OR REPLACE FUNCTION bench_hist_put(s bigint[], b int, n bigint) RETURNS bigint[] LANGUAGE plpgsql AS $$
BEGIN
  IF b IS NULL THEN RETURN s; END IF;
  IF s IS NULL THEN s := array_fill(0::bigint, ARRAY[%(buckets)s]); END IF;
  s[b + 1] := s[b + 1] + n;
  RETURN s;
END $$;
CREATE OR REPLACE AGGREGATE bench_hist(int, bigint) (sfunc = bench_hist_put, stype = bigint[]);
"""
BUCKET = "CASE WHEN {ms} <= 1 THEN 0 ELSE least({top}, ceil(10 * log({ms}) - 1e-9))::int END"
# Every attempted message's final outcome, bucketed (wait: sent rows; call: every row), then one row per key.
SEED_OUTCOMES = """
WITH m AS (
  SELECT (coalesce(sent_at, failed_at) AT TIME ZONE 'UTC')::date AS day, tenant_id, channel, provider, priority,
         CASE WHEN status IN ('failed', 'dead') THEN status ELSE 'sent' END AS outcome,
         CASE WHEN status IN ('failed', 'dead') THEN failure_code ELSE '' END AS code,
         CASE WHEN sent_at IS NOT NULL THEN {wait} END AS wb, {call} AS cb
    FROM (SELECT *, extract(epoch FROM sent_at - greatest(created_at, coalesce(scheduled_for, created_at))) * 1000
                    AS wait_ms,
                 exp(ln(CASE provider WHEN 'ses' THEN 80 WHEN 'smtp' THEN 15 WHEN 'twilio' THEN 250
                                      WHEN 'vonage' THEN 300 WHEN 'fcm' THEN 60 ELSE 40 END)
                     + 0.6 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS call_ms
            FROM delivery_message WHERE provider <> '' AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)) x
), kb AS (
  SELECT day, tenant_id, channel, provider, priority, outcome, code, 'w' AS kind, wb AS b, count(*) AS n
    FROM m WHERE wb IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 9
  UNION ALL
  SELECT day, tenant_id, channel, provider, priority, outcome, code, 'c', cb, count(*) FROM m GROUP BY 1, 2, 3, 4, 5, 6, 7, 9
)
INSERT INTO delivery_outcomeday (day, tenant_id, channel, provider, priority, outcome, code, n, wait_hist, call_hist)
SELECT day, tenant_id, channel, provider, priority, outcome, code, sum(n) FILTER (WHERE kind = 'c'),
       bench_hist(b, n) FILTER (WHERE kind = 'w'), bench_hist(b, n) FILTER (WHERE kind = 'c')
  FROM kb GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
# The performance query before issue 22 item 1: percentiles over the period's messages (uuid7 id range).
OLD_PERFORMANCE = """
SELECT priority, count(*), count(*) FILTER (WHERE sent_at IS NOT NULL),
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY
         extract(epoch FROM sent_at - greatest(created_at, coalesce(scheduled_for, created_at))) * 1000)
         FILTER (WHERE sent_at IS NOT NULL)
  FROM delivery_message WHERE id >= %s AND id < %s AND tenant_id = %s GROUP BY 1
"""


def seed_outcomes() -> None:
    from django.db import connection

    from delivery.latency import buckets

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM delivery_outcomeday")
        if cur.fetchone()[0]:
            return
        started = time.perf_counter()
        cur.execute(HIST_AGG % {"buckets": buckets.BUCKETS})
        top = buckets.BUCKETS - 1
        cur.execute(SEED_OUTCOMES.format(wait=BUCKET.format(ms="wait_ms", top=top),
                                         call=BUCKET.format(ms="call_ms", top=top)))
        cur.execute("VACUUM ANALYZE delivery_outcomeday")
        cur.execute("SELECT count(*), pg_size_pretty(pg_total_relation_size('delivery_outcomeday')), sum(n) "
                    "FROM delivery_outcomeday")
        rows, size, n = cur.fetchone()
        print(f"seeded delivery_outcomeday from the messages in {time.perf_counter() - started:.0f} s: "
              f"{rows:,} rows ({size}) for {n:,} outcomes", flush=True)


# The engagement query before the aggregate (group_by=day, one tenant): every open and click of the period.
OLD_ENGAGEMENT = """
SELECT GROUPING(g_day), GROUPING(f_device), GROUPING(f_hour), GROUPING(f_weekday), g_day, f_device, f_hour, f_weekday,
       event_type, count(*), count(DISTINCT message_id) FROM (
  SELECT (recorded_at AT TIME ZONE 'UTC')::date AS g_day, coalesce(nullif(device_type, ''), 'unknown') AS f_device,
         extract(hour FROM timestamp AT TIME ZONE 'UTC')::int AS f_hour,
         extract(isodow FROM timestamp AT TIME ZONE 'UTC')::int AS f_weekday, event_type, message_id
    FROM tracking_messageevent WHERE event_type = ANY(%s) AND recorded_at >= %s AND recorded_at < %s
     AND tenant_id = %s) ev
 GROUP BY GROUPING SETS ((g_day, event_type), (f_device, event_type), (f_hour, event_type), (f_weekday, event_type))
"""


def seed_engagement() -> None:
    """The engagement aggregate from the seeded events, once, if the migration found none to build from."""
    from django.db import connection

    from tracking.services.engagement_days import engagement_days_backfill

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM tracking_engagementday")
        if not cur.fetchone()[0]:
            started = time.perf_counter()
            engagement_days_backfill()
            print(f"built tracking_engagementday from the events in {time.perf_counter() - started:.1f} s", flush=True)
        cur.execute("VACUUM ANALYZE tracking_engagementday")
        cur.execute("SELECT count(*), pg_size_pretty(pg_total_relation_size('tracking_engagementday')), sum(total), "
                    "sum(uniques) FROM tracking_engagementday")
        print("tracking_engagementday: {:,} rows ({}) for {:,} opens/clicks, {:,} unique".format(*cur.fetchone()),
              flush=True)


def engagement_cost(sets: int = 300) -> None:
    """Time the backfill from the seeded events (in a transaction rolled back), then the engagement upsert of
    one applied set: a pixel open (1 event) and a webhook batch (100 opens/clicks), each timed inside its own
    transaction (rolled back: the commit is the one the event insert pays anyway)."""
    import uuid
    from random import Random
    from types import SimpleNamespace

    from django.db import connection, transaction
    from django.utils import timezone

    from tracking.normalised import NormalisedEvent
    from tracking.services import engagement_days

    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("DELETE FROM tracking_engagementday")
        t0 = time.perf_counter()
        groups = engagement_days.engagement_days_backfill()
        print(f"backfill from tracking_messageevent: {time.perf_counter() - t0:.1f} s, {groups:,} rows (rolled back)")
        transaction.set_rollback(True)
    rng, now = Random(1), timezone.now()
    tenants = [uuid.uuid4() for _ in range(2)]
    agents = ["", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
              "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"]
    for measured, size in ((False, 100), (True, 1), (True, 100)):  # a first pass, committed, makes them updates
        wall, cpu = [], []
        for _ in range(sets):
            events = []
            for _ in range(size):
                m = SimpleNamespace(id=uuid.uuid4(), tenant_id=rng.choice(tenants))
                e = NormalisedEvent(provider=rng.choice(["comms", "sendgrid"]), event_type=rng.choice(
                    ["opened", "opened", "clicked"]), user_agent=rng.choice(agents))
                events.append((m, e, now - timedelta(seconds=rng.random() * 3600)))
            won = {(str(m.id), e.event_type) for m, e, _ in events}
            with transaction.atomic():  # the caller's transaction: its commit is the event insert's too
                w0, c0 = time.perf_counter(), time.process_time()
                engagement_days.rollup(events=events, won=won, now=now)
                wall.append((time.perf_counter() - w0) * 1000)
                cpu.append((time.process_time() - c0) * 1e6 / size)
                transaction.set_rollback(measured)
        if not measured:
            continue
        print(f"engagement upsert, set of {size}: {statistics.median(wall):.2f} ms per set (median of {sets}, p95 "
              f"{sorted(wall)[int(0.95 * len(wall))]:.2f} ms), {statistics.median(cpu):.0f} µs CPU per event")
    with connection.cursor() as cur:  # the synthetic tenants' rows out again
        cur.execute("DELETE FROM tracking_engagementday WHERE tenant_id = ANY(%s::uuid[])", [[str(t) for t in tenants]])


def write_cost(flushes: int = 300, size: int = 100) -> None:
    """CPU to group a flush of `size` outcomes and wall time of its one upsert (into the seeded table)."""
    import uuid
    from types import SimpleNamespace

    from django.utils import timezone

    from delivery.latency import recording

    rng, now = __import__("random").Random(1), timezone.now()
    tenants = [uuid.uuid4() for _ in range(3)]
    batches = [[SimpleNamespace(
        message=SimpleNamespace(tenant_id=rng.choice(tenants), channel=rng.choice(["email", "sms"]),
                                priority=rng.randrange(5), created_at=now - timedelta(seconds=rng.random() * 30),
                                scheduled_for=None),
        event="sent" if rng.random() < 0.95 else "failed", provider=rng.choice(["ses", "smtp"]), now=now,
        result=SimpleNamespace(ok=True, code=""), provider_ms=rng.lognormvariate(4, 0.5))
        for _ in range(size)] for _ in range(flushes)]
    for batch in batches:
        for o in batch:
            o.result.ok = o.event == "sent"
            o.result.code = "" if o.result.ok else "550"
    cpu, wall = [], []
    for batch in batches:
        c0, w0 = time.process_time(), time.perf_counter()
        groups = recording._groups(batch)
        cpu.append((time.process_time() - c0) * 1e6 / size)
        recording.rollup(batch)
        wall.append((time.perf_counter() - w0) * 1000)
    print(f"outcome flush of {size}: grouping {statistics.median(cpu):.1f} µs CPU per outcome (median), "
          f"{len(groups)} groups; grouping + upsert {statistics.median(wall):.2f} ms per flush "
          f"(median of {flushes}, p95 {sorted(wall)[int(0.95 * len(wall))]:.2f} ms)")


def explain(sqls: list[str]) -> list[str]:
    """The scan nodes of each statement's plan (what it reads, and how)."""
    from django.db import connection

    out = []
    with connection.cursor() as cur:
        for sql in sqls:
            cur.execute("EXPLAIN " + sql)
            plan = [r[0] for r in cur.fetchall()]
            out += [re.sub(r"\s+\(cost=.*", "", line).strip() for line in plan
                    if re.search(r"Scan|Index Cond", line)]
    return out


def main() -> None:
    data = Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 10
    from comms.devserver.embedded import start_postgres, start_redis

    pg = start_postgres(data / "pg")
    redis = start_redis(Path(tempfile.mkdtemp(prefix="bench-analytics-redis-")))
    os.environ.update({"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "DJANGO_SETTINGS_MODULE": "config.settings",
                       "LOG_LEVEL": "WARNING"})
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext, setup_test_environment

        from bench.dashboard import timed
        from comms.retention import uuid7_floor
        from comms.services import api_key_create, tenant_get_default

        setup_test_environment()
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"migrated in {time.perf_counter() - started:.0f} s", flush=True)
        if "--write" in sys.argv:
            write_cost()
            return
        if "--engagement" in sys.argv:
            engagement_cost()
            return
        seed_outcomes()
        seed_engagement()
        with connection.cursor() as cur:
            cur.execute("SELECT count(*), pg_size_pretty(pg_total_relation_size('delivery_message')) "
                        "FROM delivery_message")
            print("delivery_message: {:,} rows, {}".format(*cur.fetchone()))
            for table in ("tracking_messageevent", "preferences_consentrecord", "preferences_suppression",
                          "admin_console_eventday", "delivery_outcomeday"):
                cur.execute(f"SELECT count(*) FROM {table}")
                print(f"{table}: {cur.fetchone()[0]:,} rows")
        tenant = tenant_get_default()
        _, raw = api_key_create(tenant=tenant, name="bench", scopes=["messages:read"])
        client, auth = Client(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        day = (datetime.now(tz.utc) - timedelta(days=1)).date().isoformat()
        periods = {"30 d": "", "1 d": f"from={day}&to={day}"}
        reports = {"delivery": "/api/v1/analytics/delivery?group_by=channel,day",
                   "engagement": "/api/v1/analytics/engagement?group_by=day",
                   "performance": "/api/v1/analytics/performance?group_by=priority",
                   "compliance": "/api/v1/compliance/report"}
        print(f"\n{'report':12s} {'period':6s} {'format':6s} {'median ms':>10s} {'p95 ms':>8s}")
        plans: dict[str, list[str]] = {}
        for name, path in reports.items():
            for label, query in periods.items():
                for fmt in ("json", "csv"):
                    url = f"{path}{'&' if '?' in path else '?'}format={fmt}" + (f"&{query}" if query else "")
                    with CaptureQueriesContext(connection) as queries:
                        assert client.get(url, **auth).status_code == 200, url
                    if fmt == "json":
                        plans[f"{name}, {label}"] = explain([q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(
                            ("SELECT", "WITH", "(SELECT"))])
                    median, p95 = timed(lambda: client.get(url, **auth), runs=runs)
                    print(f"{name:12s} {label:6s} {fmt:6s} {median:10.1f} {p95:8.1f}", flush=True)
        print("\nEXPLAIN, scan nodes of every statement (JSON):")
        for name, lines in plans.items():
            bad = [line for line in lines if "delivery_message" in line]
            print(f"  {name}: {'READS delivery_message' if bad else 'no read of delivery_message'}"
                  + ("" if not name.startswith("engagement") else ", " + (
                      "READS tracking_messageevent" if any("tracking_messageevent" in x for x in lines)
                      else "no read of tracking_messageevent")))
            for line in lines:
                print(f"      {line}")
        since = datetime.now(tz.utc) - timedelta(days=30)
        samples = []
        with connection.cursor() as cur:
            for _ in range(2):
                t0 = time.perf_counter()
                cur.execute(OLD_PERFORMANCE, [uuid7_floor(since), uuid7_floor(datetime.now(tz.utc)), str(tenant.pk)])
                cur.fetchall()
                samples.append((time.perf_counter() - t0) * 1000)
        print(f"\nfor comparison, the previous performance query (percentile_cont over the tenant's 30 days of "
              f"messages): {statistics.median(samples):.0f} ms (median of 2)")
        samples = []
        with connection.cursor() as cur:
            for _ in range(2):
                t0 = time.perf_counter()
                cur.execute(OLD_ENGAGEMENT, [["opened", "clicked"], since, datetime.now(tz.utc), str(tenant.pk)])
                cur.fetchall()
                samples.append((time.perf_counter() - t0) * 1000)
        print(f"for comparison, the previous engagement query (GROUPING SETS over the tenant's 30 days of opens and "
              f"clicks): {statistics.median(samples):.0f} ms (median of 2)")
    finally:
        pg.stop()
        redis.stop()


if __name__ == "__main__":
    main()

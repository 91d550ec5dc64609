"""Retention on a big message table: claim latency vs an empty table, and removing one expired day.

    python bench/retention_seed.py DIR 20000000      # once: the scratch database (see that file)
    python bench/retention.py DIR                     # figures on it (removes the expired day!)
    python bench/retention.py DIR --empty             # claim figures on an empty database, same server
    python bench/retention.py DIR --claims-only       # claim figures on the seeded data, nothing removed

Prints figures; asserts nothing. Recorded in docs/benchmarks.md ("Retention"). While the removal
runs, one thread samples pg_locks / pg_stat_activity every 50 ms and another runs a queue loop
(insert 50 P2 rows, claim them with the engine's claim, write each outcome + log row) to measure
queue throughput before and during the removal.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retention_seed import UUID7_SQL  # noqa: E402

INSERT_QUEUED = """
INSERT INTO delivery_message (id, tenant_id, channel, priority, category, status, recipient_address, template_key,
  variant, locale, artifact, subject, body, body_html, variables, metadata, payload, request_hash, fallback_channels,
  attempt_count, next_attempt_at, provider, provider_ref, failure_code, failure_reason, created_at, updated_at, pool)
SELECT bench_uuid7(now()), %(tenant)s, 'email', %(priority)s, 'transactional', 'queued', 'q' || i || '@example.com',
       '', '', '', '', 'Hi', '', '', '{}', '{}', '{}', '', '{}', 0, now(), '', '', '', '', now(), now(), ''
  FROM generate_series(1, %(n)s) i
"""
OUTCOME = """
WITH u AS (UPDATE delivery_message SET status = 'sent', provider = 'ses', sent_at = now(), lease_owner = NULL
            WHERE id = ANY(%s) RETURNING id)
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, 'sent', now(), 1, 'ses', '', '250', '', '{}' FROM u
"""


def pct(samples: list[float], p: float) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(p * len(samples)))]


def sizes() -> dict[str, str]:
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        for table in ("delivery_message", "delivery_deliverylog"):
            cur.execute("SELECT pg_size_pretty(pg_relation_size(%s)), pg_size_pretty(pg_indexes_size(%s)), "
                        "pg_size_pretty(pg_total_relation_size(%s)), pg_total_relation_size(%s)",
                        [table] * 4)
            heap, idx, total, raw = cur.fetchone()
            out[table] = f"heap {heap}, indexes {idx}, total {total}"
            out[table + "_bytes"] = raw
    return out


def claims(tenant_id: str, rounds: int = 200) -> tuple[list[float], list[float]]:
    """P0: insert one row then claim it (the accept → claim path minus HTTP); and claims of 10 ready rows."""
    from django.db import connection

    from delivery.services.outcomes import claim_batch

    one, ten = [], []
    with connection.cursor() as cur:
        for _ in range(rounds):
            started = time.perf_counter()
            cur.execute(INSERT_QUEUED, {"tenant": tenant_id, "priority": 0, "n": 1})
            got = claim_batch(max_priority=0, limit=10, owner="bench")
            one.append((time.perf_counter() - started) * 1000)
            assert len(got) == 1, len(got)
            cur.execute(OUTCOME, [[m.id for m in got]])
        cur.execute(INSERT_QUEUED, {"tenant": tenant_id, "priority": 0, "n": rounds * 10})
        for _ in range(rounds):
            started = time.perf_counter()
            got = claim_batch(max_priority=0, limit=10, owner="bench")
            ten.append((time.perf_counter() - started) * 1000)
            cur.execute(OUTCOME, [[m.id for m in got]])
    return one, ten


def print_claims(label: str, tenant_id: str) -> None:
    one, ten = claims(tenant_id)
    print(f"{label}: P0 insert+claim median {statistics.median(one):.2f} ms p99 {pct(one, .99):.2f} ms; "
          f"claim of 10 ready P0 median {statistics.median(ten):.2f} ms p99 {pct(ten, .99):.2f} ms")


class QueueLoad(threading.Thread):
    """Insert 50 P2 rows, claim them, write each outcome: messages through the queue per second."""

    def __init__(self, tenant_id: str):
        super().__init__(daemon=True)
        self.tenant_id, self.stop_at, self.done, self.marks = tenant_id, False, 0, []

    def run(self) -> None:
        from django.db import connection

        from delivery.services.outcomes import claim_batch

        with connection.cursor() as cur:
            while not self.stop_at:
                cur.execute(INSERT_QUEUED, {"tenant": self.tenant_id, "priority": 2, "n": 50})
                got = claim_batch(max_priority=2, limit=50, owner="bench-load")
                for m in got:
                    cur.execute(OUTCOME, [[m.id]])
                self.done += len(got)
                self.marks.append((time.monotonic(), self.done))
        connection.close()

    def rate(self, t0: float, t1: float) -> float:
        inside = [(t, n) for t, n in self.marks if t0 <= t <= t1]
        if len(inside) < 2:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


class LockSampler(threading.Thread):
    """Every 50 ms: the retention session's locks and transaction age, and anyone waiting on a lock."""

    def __init__(self, pid_holder: dict):
        super().__init__(daemon=True)
        self.pid_holder, self.stop_at = pid_holder, False
        self.max_locks, self.modes, self.max_xact_ms, self.waiting, self.samples = 0, set(), 0.0, 0, 0

    def run(self) -> None:
        from django.db import connection

        with connection.cursor() as cur:
            while not self.stop_at:
                pid = self.pid_holder.get("pid")
                if pid:
                    cur.execute("SELECT l.mode, c.relkind, count(*) FROM pg_locks l LEFT JOIN pg_class c "
                                "ON c.oid = l.relation WHERE l.pid = %s AND l.granted GROUP BY 1, 2", [pid])
                    rows = cur.fetchall()
                    self.max_locks = max(self.max_locks, sum(r[2] for r in rows))
                    self.modes |= {f"{r[0]}({r[1] or '-'})" for r in rows}
                    cur.execute("SELECT extract(epoch FROM now() - xact_start) * 1000 FROM pg_stat_activity "
                                "WHERE pid = %s AND xact_start IS NOT NULL", [pid])
                    row = cur.fetchone()
                    if row and row[0] is not None:
                        self.max_xact_ms = max(self.max_xact_ms, float(row[0]))
                    cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    self.waiting = max(self.waiting, cur.fetchone()[0])
                    self.samples += 1
                time.sleep(0.05)
        connection.close()


def main() -> None:
    data = Path(sys.argv[1])
    empty = "--empty" in sys.argv
    from comms.devserver.embedded import start_postgres, start_redis

    pg = start_postgres(data / "pg", database="comms_empty" if empty else "comms")
    redis = start_redis(data / "redis")  # the console reads provider health and gauges from it
    os.environ.update({"DATABASE_URL": pg.url, "REDIS_URL": redis.url,
                       "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from comms.retention import retention_run
    from comms.services import tenant_get_default

    call_command("migrate", verbosity=0)
    tenant_id = str(tenant_get_default().pk)
    with connection.cursor() as cur:
        cur.execute(UUID7_SQL)  # new rows get time-ordered ids, as the application's uuid7 default makes them
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'delivery_message'")
        rows = cur.fetchone()[0]
    print(f"database {'comms_empty' if empty else 'comms'}: ~{rows:,} messages")
    print_claims("claims", tenant_id)
    if empty or "--claims-only" in sys.argv:
        if "--console" in sys.argv:
            console_median()
        pg.stop()
        redis.stop()
        return

    before = sizes()
    print("before:", {k: v for k, v in before.items() if not k.endswith("_bytes")})
    started = time.perf_counter()
    [dry] = retention_run(kinds=["messages"], dry_run=True, archive=False)
    print(f"dry run: {dry.removed:,} messages would go (count took {time.perf_counter() - started:.1f} s)")

    load = QueueLoad(tenant_id)
    load.start()
    time.sleep(20)
    holder: dict = {}
    sampler = LockSampler(holder)
    sampler.start()
    result: dict = {}

    def remove() -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid(), pg_current_wal_lsn()")
            holder["pid"], lsn = cur.fetchone()
        [result["r"]] = retention_run(kinds=["messages"], archive=False)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn])
            result["wal"] = cur.fetchone()[0]
        connection.close()

    t0 = time.monotonic()
    worker = threading.Thread(target=remove)
    worker.start()
    worker.join()
    t1 = time.monotonic()
    time.sleep(10)
    load.stop_at = sampler.stop_at = True
    load.join()
    sampler.join()
    r = result["r"]
    print(f"removal: {r.removed:,} messages + {sum(r.children.values()):,} log rows in {t1 - t0:.1f} s "
          f"({r.removed / (t1 - t0):,.0f} messages/s; {r.batches} batches of ≤ 5,000, 50 ms pause); "
          f"WAL {int(result['wal']) / 1e9:.2f} GB")
    print(f"locks held by the removal: at most {sampler.max_locks} at once, modes {sorted(sampler.modes)}; "
          f"longest transaction {sampler.max_xact_ms:.0f} ms; sessions waiting on a lock (max seen): "
          f"{sampler.waiting}; {sampler.samples} samples")
    print(f"queue loop: {load.rate(t0 - 20, t0):,.0f} msg/s before, {load.rate(t0, t1):,.0f} msg/s during, "
          f"{load.rate(t1, t1 + 10):,.0f} msg/s after")
    after = sizes()
    print("after:", {k: v for k, v in after.items() if not k.endswith("_bytes")})
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("VACUUM delivery_message")
        cur.execute("VACUUM delivery_deliverylog")
    print(f"plain VACUUM (what autovacuum does) of both tables: {time.perf_counter() - started:.1f} s")
    vacuumed = sizes()
    print("after vacuum:", {k: v for k, v in vacuumed.items() if not k.endswith("_bytes")})
    # The freed space is reused: a day's worth of new rows goes into it instead of growing the files.
    n = min(r.removed, 1_000_000)
    started = time.perf_counter()
    with connection.cursor() as cur:
        for _ in range(n // 100_000):
            cur.execute(INSERT_QUEUED.replace("'queued'", "'delivered'"), {"tenant": tenant_id, "priority": 3,
                                                                         "n": 100_000})
    refilled = sizes()
    grew = (refilled["delivery_message_bytes"] - vacuumed["delivery_message_bytes"]) / 1e6
    print(f"{n:,} new messages after the vacuum in {time.perf_counter() - started:.0f} s: delivery_message grew "
          f"{grew:,.0f} MB ({refilled['delivery_message']})")
    print_claims("claims after removal", tenant_id)
    if "--console" in sys.argv:
        console_median()
    pg.stop()
    redis.stop()


def console_median() -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    client = Client()
    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
        "bench", "b@example.com", "pw")
    client.force_login(user)
    for _ in range(3):
        assert client.get("/console/").status_code == 200
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        client.get("/console/")
        samples.append((time.perf_counter() - started) * 1000)
    print(f"/console/ median {statistics.median(samples):.0f} ms, p95 {pct(samples, .95):.0f} ms (20 requests)")


if __name__ == "__main__":
    main()

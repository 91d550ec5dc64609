"""Seed the retention benchmark's scratch database once: N messages (+ one log row each) by bulk SQL.

    python bench/retention_seed.py DIR [messages]      (default 20,000,000)

The data lives in DIR (an embedded PostgreSQL data directory) so bench/retention.py can reuse it;
remove DIR when done. Rows are written server-side (INSERT … SELECT generate_series, the same path
as COPY minus the client round-trip) with the secondary indexes dropped and rebuilt afterwards, the
way a bulk load is done. Ids are uuid7 of their created_at, as the application writes them.

Layout: 1/20 of the rows are 91 days old (the "expired day", 99 % terminal, 1 % still queued,
deferred or scheduled, which retention must keep), the rest spread over the last 19 days.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 500_000  # rows per statement; smaller for a small total so the expired day is whole chunks

UUID7_SQL = """
CREATE OR REPLACE FUNCTION bench_uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
         substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1),
         'hex')::uuid
$$;
"""

# One chunk: `n` messages created in [start, start + span) seconds ago, statuses by a hash of i.
INSERT_SQL = """
INSERT INTO delivery_message (id, tenant_id, channel, priority, category, status, recipient_address, template_key,
  variant, locale, artifact, subject, body, body_html, variables, metadata, payload, request_hash,
  fallback_channels, attempt_count, next_attempt_at, provider, provider_ref, failure_code, failure_reason,
  sent_at, created_at, updated_at, pool)
SELECT bench_uuid7(c), CASE WHEN i %% 4 = 0 THEN %(t2)s::uuid ELSE %(t1)s::uuid END,
       (ARRAY['email','email','email','sms','push'])[1 + i %% 5], 2 + i %% 3,
       CASE WHEN i %% 3 = 0 THEN 'marketing' ELSE 'transactional' END,
       CASE WHEN %(expired)s AND i %% 100 = 7 THEN (ARRAY['queued','deferred','scheduled'])[1 + i %% 3]
            ELSE (ARRAY['sent','delivered','delivered','delivered','bounced','failed','blocked','cancelled'])[1 + i %% 8]
       END,
       'user' || i || '@example.com', 'welcome', '', '', '', 'Hello', '', '', '{}', '{}', '{}', '', '{}', 1,
       c, 'ses', md5(i::text), '', '', c, c, c, ''
  FROM (SELECT i, now() - make_interval(secs => %(start)s + (i %% %(span)s)) AS c
          FROM generate_series(%(lo)s, %(hi)s) AS i) g
 ORDER BY c
"""

LOG_SQL = """
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, 'sent', created_at, 1, 'ses', '', '250', '', '{}' FROM delivery_message
 WHERE id >= %(lo)s AND id < %(hi)s
"""


def main() -> None:
    data = Path(sys.argv[1])
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000_000
    global CHUNK
    CHUNK = max(10_000, min(CHUNK, total // 40))
    from comms.devserver.embedded import start_postgres

    pg = start_postgres(data / "pg")
    os.environ.update({"DATABASE_URL": pg.url, "REDIS_URL": "redis://127.0.0.1:1/0",
                       "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from comms.models import Tenant
    from comms.services import tenant_get_default

    call_command("migrate", verbosity=0)
    t1 = tenant_get_default()
    t2, _ = Tenant.objects.get_or_create(slug="bench-other", defaults={"name": "bench other"})
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(UUID7_SQL)
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
                    "('delivery_message', 'delivery_deliverylog') AND indexname NOT LIKE '%%pkey' "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint)")
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        for trig in ("message_stats_insert", "deliverylog_stats_insert"):
            table = "delivery_message" if trig.startswith("message") else "delivery_deliverylog"
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trig}")
        expired_n = total // 20
        day = 86400
        for lo in range(0, total, CHUNK):
            hi = min(total, lo + CHUNK) - 1
            expired = hi < expired_n
            start, span = (91 * day, day) if expired else (60, 19 * day)
            cur.execute(INSERT_SQL, {"t1": str(t1.pk), "t2": str(t2.pk), "expired": expired, "start": start,
                                     "span": span, "lo": lo, "hi": hi})
            print(f"  {hi + 1:,} messages, {time.perf_counter() - started:.0f} s", flush=True)
        msg_s = time.perf_counter() - started
        # Logs in id slices of the message table (uuid7: time order), one statement per slice.
        cur.execute(f"SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM delivery_message) s "
                    f"WHERE n % {CHUNK} = 1 ORDER BY id")
        cuts = [r[0] for r in cur.fetchall()]
        for k, lo_cut in enumerate(cuts):
            hi_cut = cuts[k + 1] if k + 1 < len(cuts) else None
            if hi_cut is None:
                cur.execute(LOG_SQL.replace("AND id < %(hi)s", ""), {"lo": lo_cut})
            else:
                cur.execute(LOG_SQL, {"lo": lo_cut, "hi": hi_cut})
            print(f"  logs slice {k + 1}/{len(cuts)}, {time.perf_counter() - started:.0f} s", flush=True)
        log_s = time.perf_counter() - started - msg_s
        idx_started = time.perf_counter()
        for name, definition in indexes:
            cur.execute(definition)
            print(f"  index {name} rebuilt, {time.perf_counter() - idx_started:.0f} s", flush=True)
        for trig in ("message_stats_insert", "deliverylog_stats_insert"):
            table = "delivery_message" if trig.startswith("message") else "delivery_deliverylog"
            cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trig}")
        cur.execute("VACUUM ANALYZE delivery_message")
        cur.execute("VACUUM ANALYZE delivery_deliverylog")
    from admin_console import stats

    stats.rebuild()
    print(f"seeded {total:,} messages in {msg_s:.0f} s, logs in {log_s:.0f} s, indexes in "
          f"{time.perf_counter() - idx_started:.0f} s; total {time.perf_counter() - started:.0f} s")
    pg.stop()


if __name__ == "__main__":
    main()

"""Seed the analytics benchmark's scratch database once: N messages over 30 days, by bulk SQL.

    python bench/analytics_seed.py DIR [messages]      (default 10,000,000)

The data lives in DIR (an embedded PostgreSQL data directory) so bench/analytics_10m.py can reuse it;
remove DIR when done. As bench/retention_seed.py: rows are written server-side (INSERT … SELECT
generate_series) with the secondary indexes and the stats triggers off, then indexes rebuilt. Written:

* delivery_message: uuid7 ids of created_at (the last 30 days), two tenants, five priorities, email /
  sms / push with two providers each, sent/delivered/bounced/complained/failed/dead/blocked/queued;
  sent rows have sent_at = due + a priority-dependent queue wait, some rows are scheduled;
* delivery_deliverylog: one row per attempted message;
* tracking_messageevent: opens and clicks for ~25 % of sent email, some provider-reported unsubscribes;
* preferences_consentrecord / preferences_suppression: 2 % / 1 % of the messages' count;
* the aggregates the triggers would have kept (admin_console_eventday) and the queue gauge;
* the engagement aggregate (tracking_engagementday) as events_apply would have kept it, built from
  the seeded events (tracking.services.engagement_days.engagement_days_backfill).

The outcome aggregate (delivery_outcomeday) is seeded by bench/analytics_10m.py from these rows, after
it has migrated the database (so this seed can start before that table's migration exists).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retention_seed import UUID7_SQL  # noqa: E402

CHUNK = 500_000
DAYS = 30

# One chunk of messages created in the last DAYS days. h1/h2 are per-row pseudo-random numbers in [0, 1).
INSERT_SQL = """
INSERT INTO delivery_message (id, tenant_id, channel, priority, category, status, recipient_address, template_key,
  variant, locale, artifact, subject, body, body_html, variables, metadata, payload, request_hash,
  fallback_channels, attempt_count, next_attempt_at, provider, provider_ref, failure_code, failure_reason,
  scheduled_for, sent_at, failed_at, created_at, updated_at, pool)
SELECT bench_uuid7(c), CASE WHEN i %% 4 = 0 THEN %(t2)s::uuid ELSE %(t1)s::uuid END, ch, prio,
       CASE WHEN i %% 3 = 0 THEN 'marketing' ELSE 'transactional' END, st,
       'user' || i || '@example.com', (ARRAY['welcome','invoice','newsletter','digest'])[1 + i %% 4], '', '', '',
       'Hello', '', '', '{}', '{}', '{}', '', '{}', 1, c,
       CASE WHEN st IN ('blocked', 'queued') THEN ''
            ELSE (CASE ch WHEN 'email' THEN ARRAY['ses','smtp'] WHEN 'sms' THEN ARRAY['twilio','vonage']
                  ELSE ARRAY['fcm','apns'] END)[1 + (i / 5) %% 2] END,
       md5(i::text),
       CASE st WHEN 'failed' THEN (ARRAY['550','invalid_number','unregistered'])[1 + (i / 7) %% 3]
               WHEN 'dead' THEN (ARRAY['timeout','connect','429'])[1 + (i / 7) %% 3] ELSE '' END, '',
       sched,
       CASE WHEN st IN ('sent','delivered','bounced','complained')
            THEN greatest(c, coalesce(sched, c)) + make_interval(secs => wait_ms / 1000.0) END,
       CASE WHEN st IN ('failed','dead') THEN greatest(c, coalesce(sched, c)) + make_interval(secs => wait_ms / 1000.0) END,
       c, c, ''
  FROM (SELECT i, c, prio, ch, st,
               CASE WHEN i %% 10 = 3 THEN c + make_interval(secs => 60 * (i %% 120)) END AS sched,
               -- exponential queue wait, mean 50 ms (P0) … 20 s (P4)
               -ln(1 - random()) * (ARRAY[50, 200, 1000, 5000, 20000])[1 + prio] AS wait_ms
          FROM (SELECT i, now() - make_interval(secs => %(start)s + (i::bigint * 7919 %% %(span)s)) AS c,
                       (ARRAY[0,1,2,2,2,3,3,4])[1 + i %% 8] AS prio,
                       (ARRAY['email','email','email','sms','push'])[1 + (i / 8) %% 5] AS ch,
                       (ARRAY['sent','delivered','delivered','delivered','delivered','delivered','bounced',
                              'complained','failed','dead','blocked','sent','delivered','delivered','delivered',
                              'queued','delivered','delivered','sent','delivered'])[1 + (i / 3) %% 20] AS st
                  FROM generate_series(%(lo)s, %(hi)s) AS i) g0) g
 ORDER BY c
"""

LOG_SQL = """
INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data)
SELECT id, CASE status WHEN 'failed' THEN 'failed' WHEN 'dead' THEN 'dead' ELSE 'sent' END,
       coalesce(sent_at, failed_at), 1, provider, '', failure_code, '', '{}'
  FROM delivery_message WHERE id >= %(lo)s AND id < %(hi)s AND provider <> ''
"""

# Opens and clicks of sent email (~25 %), and provider-reported unsubscribes (~0.2 %).
EVENTS_SQL = """
INSERT INTO tracking_messageevent (tenant_id, message_id, event_type, bounce_type, provider, provider_event_id,
  recipient_address, timestamp, recorded_at, link_url, link_id, user_agent, device_type, client, geo_country,
  geo_city, reason, data)
SELECT tenant_id, id, kind, '', CASE WHEN kind = 'unsubscribed' THEN provider ELSE 'comms' END, '',
       recipient_address, at, at + CASE WHEN kind = 'unsubscribed' THEN interval '2 seconds' ELSE interval '0' END,
       '', '', '', (ARRAY['desktop','mobile','tablet'])[1 + (hashtext(id::text) & 255) %% 3], '', '', '', '', '{}'
  FROM (SELECT tenant_id, id, provider, recipient_address, sent_at + make_interval(mins => (h & 4095)) AS at,
               CASE WHEN h %% 1000 < 2 THEN 'unsubscribed' WHEN h %% 100 < 18 THEN 'opened'
                    WHEN h %% 100 < 25 THEN 'clicked' END AS kind
          FROM (SELECT tenant_id, id, provider, recipient_address, sent_at, abs(hashtext(id::text)) AS h
                  FROM delivery_message
                 WHERE id >= %(lo)s AND id < %(hi)s AND channel = 'email'
                   AND status IN ('sent', 'delivered', 'bounced', 'complained')) m) e
 WHERE kind IS NOT NULL AND at < now()
"""

CONSENT_SQL = """
INSERT INTO preferences_consentrecord (tenant_id, recipient_id, subject_hash, address_hash, channel, category, action,
  at, source, ip, user_agent, consent_text, legal_basis, erased_at, source_ref)
SELECT CASE WHEN i %% 4 = 0 THEN %(t2)s::uuid ELSE %(t1)s::uuid END, NULL, md5('s' || i), '', 'email', 'marketing',
       CASE WHEN i %% 3 = 0 THEN 'withdrawn' ELSE 'granted' END,
       now() - make_interval(secs => i::bigint * 7919 %% (%(days)s * 86400)),
       (ARRAY['api','preference_center','one_click','sms_keyword','import'])[1 + i %% 5], NULL, '', '', 'consent',
       CASE WHEN i %% 97 = 0 THEN now() - make_interval(secs => i %% 86400) END, ''
  FROM generate_series(1, %(n)s) AS i
"""

SUPPRESSION_SQL = """
INSERT INTO preferences_suppression (tenant_id, channel, address_hash, address_encrypted, reason, source, detail,
  created_at, updated_at, expires_at, event_at)
SELECT CASE WHEN i %% 4 = 0 THEN %(t2)s::uuid ELSE %(t1)s::uuid END, 'email', md5('a' || i), '',
       (ARRAY['hard_bounce','complaint','unsubscribe','manual'])[1 + i %% 4], 'bench', '',
       now() - make_interval(secs => i::bigint * 7919 %% (%(days)s * 86400)), now(), NULL, NULL
  FROM generate_series(1, %(n)s) AS i
"""

# What the deliverylog/messageevent triggers would have added up (migration 0005/0013), per day.
EVENTDAY_SQL = """
INSERT INTO admin_console_eventday (day, tenant_id, channel, provider, template_key, category, event, n)
SELECT (at AT TIME ZONE 'UTC')::date, tenant_id, channel, provider, template_key, category, event, count(*)
  FROM (SELECT coalesce(sent_at, failed_at) AS at, tenant_id, channel, provider, template_key, category, e AS event
          FROM delivery_message m
         CROSS JOIN LATERAL unnest(CASE m.status
               WHEN 'sent' THEN ARRAY['sent'] WHEN 'delivered' THEN ARRAY['sent', 'delivered']
               WHEN 'bounced' THEN ARRAY['sent', 'bounced'] WHEN 'complained' THEN ARRAY['sent', 'delivered',
               'complained'] WHEN 'failed' THEN ARRAY['failed'] WHEN 'dead' THEN ARRAY['dead'] END) e
         WHERE m.provider <> ''
        UNION ALL
        SELECT recorded_at, m.tenant_id, m.channel, m.provider, m.template_key, m.category, ev.event_type
          FROM tracking_messageevent ev JOIN delivery_message m ON m.id = ev.message_id) x
 GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

TABLES = ("delivery_message", "delivery_deliverylog", "tracking_messageevent", "preferences_consentrecord",
          "preferences_suppression", "tracking_engagementday")
TRIGGERS = (("delivery_message", "message_stats_insert"), ("delivery_deliverylog", "deliverylog_stats_insert"))


def main() -> None:
    data = Path(sys.argv[1])
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
    chunk = max(10_000, min(CHUNK, total // 20))
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
    tenants = {"t1": str(t1.pk), "t2": str(t2.pk)}
    started = time.perf_counter()

    def say(what: str) -> None:
        print(f"  {what}, {time.perf_counter() - started:.0f} s", flush=True)

    with connection.cursor() as cur:
        cur.execute(UUID7_SQL)
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                    "AND indexname NOT LIKE '%%pkey' AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                    [list(TABLES)])
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        for table, trig in TRIGGERS:
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trig}")
        cur.execute("ALTER TABLE tracking_messageevent DISABLE TRIGGER USER")
        for lo in range(0, total, chunk):
            hi = min(total, lo + chunk) - 1
            cur.execute(INSERT_SQL, {**tenants, "start": 60, "span": DAYS * 86400 - 120, "lo": lo, "hi": hi})
            say(f"{hi + 1:,} messages")
        cur.execute(f"SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM delivery_message) s "
                    f"WHERE n % {chunk} = 1 ORDER BY id")
        cuts = [r[0] for r in cur.fetchall()] + ["ffffffff-ffff-ffff-ffff-ffffffffffff"]
        for k in range(len(cuts) - 1):
            cur.execute(LOG_SQL, {"lo": cuts[k], "hi": cuts[k + 1]})
            cur.execute(EVENTS_SQL, {"lo": cuts[k], "hi": cuts[k + 1]})
            say(f"logs and events, slice {k + 1}/{len(cuts) - 1}")
        cur.execute(CONSENT_SQL, {**tenants, "n": total // 50, "days": DAYS})
        cur.execute(SUPPRESSION_SQL, {**tenants, "n": total // 100, "days": DAYS})
        say("consents and suppressions")
        for name, definition in indexes:
            cur.execute(definition)
            say(f"index {name}")
        for table, trig in TRIGGERS:
            cur.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trig}")
        cur.execute("ALTER TABLE tracking_messageevent ENABLE TRIGGER USER")
        cur.execute("TRUNCATE admin_console_eventday")
        cur.execute(EVENTDAY_SQL)
        say("daily aggregate")
        from tracking.services.engagement_days import engagement_days_backfill

        cur.execute("TRUNCATE tracking_engagementday")
        engagement_days_backfill()
        say("engagement aggregate")
        for table in TABLES:
            cur.execute(f"VACUUM ANALYZE {table}")
        say("vacuum analyze")
    from admin_console import stats

    stats.rebuild()
    print(f"seeded {total:,} messages in {time.perf_counter() - started:.0f} s")
    pg.stop()


if __name__ == "__main__":
    main()

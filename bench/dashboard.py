"""Dashboard under load: 1,000,000 messages (COPY), ~2,000,000 log rows over 8 days, time the pages.

    python bench/dashboard.py [messages]

Prints figures; asserts nothing. Recorded in docs/benchmarks.md. Timings are in-process (Django
test client: view + queries + template), median and p95 of 30 requests after 3 warm-ups.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone as tz
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comms.devserver.embedded import start_for_tests  # noqa: E402

CHUNK = 100_000
CHANNELS = ["email", "email", "email", "sms", "push", "in_app", "webhook"]
STATUSES = (["sent"] * 30 + ["delivered"] * 25 + ["queued"] * 20 + ["scheduled"] * 5 + ["deferred"] * 3 +
            ["failed"] * 3 + ["dead"] * 1 + ["blocked"] * 4 + ["bounced"] * 2 + ["complained"] * 1 +
            ["cancelled"] * 3 + ["sending"] * 3)
TEMPLATES = ["welcome", "order_confirmation", "password_reset", "newsletter", "digest", "invoice", ""]
EVENTS = ["sent"] * 10 + ["delivered"] * 8 + ["opened"] * 3 + ["clicked"] + ["bounced"] + ["failed"] + ["retrying"]


def timed(fn, runs: int = 30) -> tuple[float, float]:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def seed(total: int, tenant_id: str) -> tuple[float, float]:
    """COPY `total` messages in 100,000-row statements, then two log rows per message."""
    from django.db import connection

    now = datetime.now(tz.utc)
    rng = random.Random(7)
    columns = ("id", "tenant_id", "channel", "priority", "category", "status", "recipient_address", "template_key",
               "variant", "locale", "artifact", "subject", "body", "body_html", "variables", "metadata", "payload",
               "request_hash", "fallback_channels", "attempt_count", "next_attempt_at", "provider", "provider_ref",
               "failure_code", "failure_reason", "created_at", "updated_at")
    started = time.perf_counter()
    ids: list[tuple[str, str, datetime]] = []
    with connection.cursor() as cursor:
        for offset in range(0, total, CHUNK):
            lines = []
            for i in range(offset, min(total, offset + CHUNK)):
                status = rng.choice(STATUSES)
                channel = rng.choice(CHANNELS)
                created = now - timedelta(seconds=rng.randrange(8 * 86400))
                provider = "" if status in ("queued", "scheduled", "deferred", "blocked", "cancelled") else (
                    {"email": rng.choice(["ses", "smtp"]), "sms": "twilio", "push": "fcm"}.get(channel, channel))
                code = {"blocked": rng.choice(["PREF_OPTED_OUT", "SUPPRESSED", "QUIET_HOURS"]),
                        "deferred": "quiet_hours", "failed": "550", "dead": "connect"}.get(status, "")
                due = now - timedelta(seconds=rng.randrange(3600)) if status == "queued" else created
                mid = str(uuid.uuid4())
                lines.append("\t".join([
                    mid, tenant_id, channel, str(rng.randrange(5)), rng.choice(["transactional", "marketing"]), status,
                    f"user{i}@example.com", rng.choice(TEMPLATES), "", "", "", "", "", "", "{}", "{}", "{}", "", "{}",
                    "1", due.isoformat(), provider, "", code, "", created.isoformat(), created.isoformat()]) + "\n")
                if provider:
                    ids.append((mid, provider, created))
            with cursor.copy(f"COPY delivery_message ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write("".join(lines))
        copied = time.perf_counter() - started
        started = time.perf_counter()
        log_cols = "message_id, event, at, attempt, provider, provider_event_id, status_code, detail, data"
        for offset in range(0, len(ids), CHUNK):
            lines = []
            for mid, provider, created in ids[offset:offset + CHUNK]:
                for _ in range(2):
                    at = created + timedelta(seconds=rng.randrange(600))
                    lines.append(f"{mid}\t{rng.choice(EVENTS)}\t{at.isoformat()}\t1\t{provider}\t\t\t\t{{}}\n")
            with cursor.copy(f"COPY delivery_deliverylog ({log_cols}) FROM STDIN") as copy:
                copy.write("".join(lines))
        logged = time.perf_counter() - started
        cursor.execute("ANALYZE delivery_message")
        cursor.execute("ANALYZE delivery_deliverylog")
    return copied, logged


def trigger_overhead(tenant_id: str) -> dict:
    """What the stats triggers cost: 100,000-row COPY and 5,000 single-row outcome updates, on and off."""
    from django.db import connection

    out = {}
    with connection.cursor() as cursor:
        for label, action in (("on", "ENABLE"), ("off", "DISABLE")):
            cursor.execute(f"ALTER TABLE delivery_message {action} TRIGGER message_stats_insert")
            cursor.execute(f"ALTER TABLE delivery_message {action} TRIGGER message_stats_update")
            now = datetime.now(tz.utc).isoformat()
            body = "".join(f"{uuid.uuid4()}\t{tenant_id}\temail\t3\tmarketing\tqueued\to{label}{i}@example.com\t"
                           f"\t\t\t\t\t\t\t{{}}\t{{}}\t{{}}\t\t{{}}\t0\t{now}\t\t\t\t\t{now}\t{now}\n" for i in range(CHUNK))
            started = time.perf_counter()
            with cursor.copy("COPY delivery_message (id, tenant_id, channel, priority, category, status, "
                             "recipient_address, template_key, variant, locale, artifact, subject, body, body_html, "
                             "variables, metadata, payload, request_hash, fallback_channels, attempt_count, "
                             "next_attempt_at, provider, provider_ref, failure_code, failure_reason, created_at, "
                             "updated_at) FROM STDIN") as copy:
                copy.write(body)
            out[f"copy_100k_{label}_s"] = round(time.perf_counter() - started, 2)
            cursor.execute("SELECT id FROM delivery_message WHERE recipient_address LIKE %s LIMIT 5000",
                           [f"o{label}%"])
            targets = [r[0] for r in cursor.fetchall()]
            started = time.perf_counter()
            for mid in targets:
                cursor.execute("UPDATE delivery_message SET status = 'sent', provider = 'ses' WHERE id = %s", [mid])
            out[f"update_{label}_ms_per_row"] = round((time.perf_counter() - started) * 1000 / len(targets), 3)
        cursor.execute("ALTER TABLE delivery_message ENABLE TRIGGER message_stats_insert")
        cursor.execute("ALTER TABLE delivery_message ENABLE TRIGGER message_stats_update")
        # The rows inserted with the trigger off are not on the gauge: repair it (what `rebuild` is for).
    from admin_console import stats

    stats.rebuild()
    return out


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pg, redis, root = start_for_tests()
    os.environ.update({"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "COMMS_VAR_DIR": str(root / "var"),
                       "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"})
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        from admin_console import stats
        from comms.services import api_key_create, tenant_get_default

        setup_test_environment()
        call_command("migrate", verbosity=0)
        tenant = tenant_get_default()
        copied, logged = seed(total, str(tenant.pk))
        print(f"seeded {total:,} messages by COPY in {copied:.1f} s ({total / copied:,.0f} rows/s incl. triggers); "
              f"log rows in {logged:.1f} s")
        client = Client()
        client.force_login(get_user_model().objects.create_superuser("bench", "b@example.com", "pw"))
        _, raw = api_key_create(tenant=tenant, name="bench", scopes=["messages:read"])
        auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        pages = {
            "/console/": lambda: client.get("/console/"),
            "/api/v1/stats/queue": lambda: client.get("/api/v1/stats/queue", **auth),
            "/api/v1/stats/channels": lambda: client.get("/api/v1/stats/channels", **auth),
            "/api/v1/stats/templates": lambda: client.get("/api/v1/stats/templates", **auth),
            "/metrics": lambda: client.get("/metrics"),
        }
        from django.db import connection

        def pending() -> str:
            with connection.cursor() as cursor:
                cursor.execute("SELECT (SELECT count(*) FROM admin_console_queuegauge_delta), "
                               "(SELECT count(*) FROM admin_console_event_delta)")
                return "gauge %s, events %s" % cursor.fetchone()

        # The seed's 2M log rows spread over 8 days leave ~1 delta row per minute bucket and key; in
        # production beat folds deltas every 10 s, so fold them first, as beat would have.
        print(f"pending deltas after the seed: {pending()}")
        started = time.perf_counter()
        stats.rollup()
        print(f"rollup of the seed's deltas: {(time.perf_counter() - started):.1f} s")
        for path, fn in pages.items():
            assert fn().status_code == 200, path
            median, p95 = timed(fn)
            print(f"  steady state     {path:26s} median {median:6.1f} ms  p95 {p95:6.1f} ms")
        # Ten seconds of live traffic at ~1,000 outcomes/s between two rollups: 10,000 single-row
        # outcome statements (status update + log row), as the engine writes them.
        live = 10_000
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM delivery_message WHERE status = 'queued' LIMIT %s", [live])
            ids = [r[0] for r in cursor.fetchall()]
            started = time.perf_counter()
            for mid in ids:
                cursor.execute("""
                    WITH u AS (UPDATE delivery_message SET status = 'sent', provider = 'ses', sent_at = now()
                                WHERE id = %s RETURNING id)
                    INSERT INTO delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id,
                                                      status_code, detail, data)
                    SELECT id, 'sent', now(), 1, 'ses', '', '', '', '{}' FROM u""", [mid])
            elapsed = time.perf_counter() - started
        print(f"{live:,} live outcomes written in {elapsed:.1f} s; pending deltas: {pending()}")
        for path, fn in pages.items():
            median, p95 = timed(fn)
            print(f"  10 s of deltas   {path:26s} median {median:6.1f} ms  p95 {p95:6.1f} ms")
        started = time.perf_counter()
        stats.rollup()
        print(f"rollup of 10 s of deltas: {(time.perf_counter() - started) * 1000:.0f} ms")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT status, count(*) FROM delivery_message GROUP BY 1")
            cursor.fetchall()
        print(f"for comparison, one full-scan GROUP BY status over the table: "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")
        print("trigger overhead:", trigger_overhead(str(tenant.pk)))
    finally:
        pg.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

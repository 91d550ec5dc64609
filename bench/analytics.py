"""Analytics and compliance reports at size: N messages over 8 days (uuid7 ids), their logs, opens
and clicks; time each report (Django test client, median/p95 of 15 after 3 warm-ups).

    python bench/analytics.py [messages]

Prints figures; asserts nothing. Recorded in docs/benchmarks.md ("Analytics reports").
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from datetime import datetime, timedelta, timezone as tz
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dashboard import CHANNELS, CHUNK, EVENTS, STATUSES, TEMPLATES, timed  # noqa: E402
from comms.devserver.embedded import start_for_tests  # noqa: E402


def uuid7_at(at: datetime, rng: random.Random) -> str:
    """A uuid7 whose time prefix is `at` (RFC 9562 §5.7), as the API's and bulk's ids are."""
    hex_ = f"{int(at.timestamp() * 1000):012x}7{rng.getrandbits(76):019x}"
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:32]}"


def seed(total: int, tenant_id: str) -> float:
    from django.db import connection

    now, rng = datetime.now(tz.utc), random.Random(7)
    cols = ("id, tenant_id, channel, priority, category, status, recipient_address, template_key, variant, locale, "
            "artifact, subject, body, body_html, variables, metadata, payload, request_hash, fallback_channels, "
            "attempt_count, next_attempt_at, provider, provider_ref, failure_code, failure_reason, created_at, "
            "updated_at, sent_at")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for offset in range(0, total, CHUNK):
            lines, logs, events = [], [], []
            for i in range(offset, min(total, offset + CHUNK)):
                status, channel = rng.choice(STATUSES), rng.choice(CHANNELS)
                created = now - timedelta(seconds=rng.randrange(8 * 86400))
                mid = uuid7_at(created, rng)
                sent = status in ("sent", "delivered", "bounced", "complained")
                provider = {"email": rng.choice(["ses", "smtp"]), "sms": "twilio"}.get(channel, channel) \
                    if sent or status in ("failed", "dead") else ""
                code = {"failed": "550", "dead": "connect"}.get(status, "")
                sent_at = (created + timedelta(milliseconds=rng.expovariate(1 / 800))).isoformat() if sent else r"\N"
                lines.append("\t".join([
                    mid, tenant_id, channel, str(rng.randrange(5)), "marketing", status, f"u{i}@example.com",
                    rng.choice(TEMPLATES), "", "", "", "", "", "", "{}", "{}", "{}", "", "{}", "1",
                    created.isoformat(), provider, "", code, "", created.isoformat(), created.isoformat(),
                    sent_at]) + "\n")
                if provider:
                    logs.append(f"{mid}\t{rng.choice(EVENTS)}\t{created.isoformat()}\t1\t{provider}\t\t\t\t{{}}\n")
                if sent and channel == "email" and rng.random() < 0.3:
                    kind = rng.choice(["opened", "opened", "clicked"])
                    at = (created + timedelta(hours=rng.randrange(48))).isoformat()
                    events.append(f"{tenant_id}\t{mid}\t{kind}\t\tcomms\t\tu{i}@example.com\t{at}\t{at}\t\t\t\t"
                                  f"{rng.choice(['desktop', 'mobile', 'tablet'])}\t\t\t\t\t{{}}\n")
            with cursor.copy(f"COPY delivery_message ({cols}) FROM STDIN") as copy:
                copy.write("".join(lines))
            with cursor.copy("COPY delivery_deliverylog (message_id, event, at, attempt, provider, provider_event_id, "
                             "status_code, detail, data) FROM STDIN") as copy:
                copy.write("".join(logs))
            with cursor.copy("COPY tracking_messageevent (tenant_id, message_id, event_type, bounce_type, provider, "
                             "provider_event_id, recipient_address, timestamp, recorded_at, link_url, link_id, "
                             "user_agent, device_type, client, geo_country, geo_city, reason, data) FROM STDIN") as copy:
                copy.write("".join(events))
        cursor.execute("ANALYZE delivery_message, delivery_deliverylog, tracking_messageevent")
    return time.perf_counter() - started


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pg, redis, root = start_for_tests()
    os.environ.update({"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "COMMS_VAR_DIR": str(root / "var"),
                       "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"})
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment

        from admin_console import stats
        from comms.services import api_key_create, tenant_get_default

        setup_test_environment()
        call_command("migrate", verbosity=0)
        tenant = tenant_get_default()
        print(f"seeded {total:,} messages over 8 days in {seed(total, str(tenant.pk)):.1f} s")
        stats.rollup()
        client = Client()
        _, raw = api_key_create(tenant=tenant, name="bench", scopes=["messages:read"])
        auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        day = (datetime.now(tz.utc) - timedelta(days=1)).date().isoformat()
        for path in ("/api/v1/analytics/delivery?group_by=channel,day", "/api/v1/analytics/delivery?group_by=template",
                     "/api/v1/analytics/engagement?group_by=day", "/api/v1/analytics/performance",
                     f"/api/v1/analytics/performance?from={day}&to={day}", "/api/v1/compliance/report",
                     "/api/v1/analytics/delivery?group_by=channel&format=csv"):
            assert client.get(path, **auth).status_code == 200, path
            median, p95 = timed(lambda: client.get(path, **auth), runs=15)
            print(f"  {path:62s} median {median:7.1f} ms  p95 {p95:7.1f} ms")
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute("SELECT status, count(*) FROM delivery_message GROUP BY 1")
            cursor.fetchall()
            print(f"for comparison, one full-scan GROUP BY over delivery_message: "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms")
    finally:
        pg.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

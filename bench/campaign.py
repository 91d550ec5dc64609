"""Campaign fan-out benchmark: one campaign to N directory recipients (default 1,000,000).

    python bench/campaign.py [N]

Prints: time to write the directory (setup, not measured against the aim), time from "schedule"
to every delivery row queued (aim: 1,000,000 in < 30 s), time to the first email in the sink
with two bulk worker processes running during the fan-out, and the send rate into the SMTP sink
over the following BENCH_SEND_SECONDS (default 60). Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import Env  # noqa: E402


def make_directory(n: int) -> float:
    """COPY N recipients straight into the directory (setup only)."""
    import uuid

    from django.db import connection

    from comms.services import tenant_get_default

    tenant = tenant_get_default()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy("COPY comms_recipient (id, tenant_id, external_id, email, phone, locale, timezone, "
                         "attributes, created_at, updated_at) FROM STDIN") as copy:
            buf = io.StringIO()
            for i in range(n):
                zone = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")[i % 4]
                buf.write(f"{uuid.uuid4()}\t{tenant.id}\tuser{i}\tuser{i}@example.com\t\ten-US\t{zone}\t"
                          f"{{\"plan\": \"{'pro' if i % 2 else 'free'}\"}}\tnow()\tnow()\n")
                if i % 50_000 == 49_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        cursor.execute("ANALYZE comms_recipient")
    return time.perf_counter() - started


def make_template():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from comms.services import tenant_get_default
    from templates_app import services as templates

    editor = get_user_model().objects.create_user("bench-editor", is_staff=True)
    approver = get_user_model().objects.create_user("bench-approver", is_staff=True)
    approver.user_permissions.add(Permission.objects.get(codename="approve_template"))
    approver = get_user_model().objects.get(pk=approver.pk)
    template = templates.template_create(tenant=tenant_get_default(), actor=editor, user=editor, data={
        "template_key": "winter_sale", "name": "Winter sale", "category": "marketing", "channels": ["email"],
        "variables_schema": {"type": "object", "properties": {"discount": {"type": "integer"}}},
        "sample_variables": {"discount": 20},
        "locales": [{"locale": "en-US", "subject": "{{discount}}% off this week",
                     "body_html": "<p>Hello, everything is {{discount}}% off until Sunday.</p>"}]})
    version = template.versions.get()
    templates.version_submit(version=version, actor=editor, user=editor)
    templates.version_approve(version=version, user=approver)


def sent_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM delivery_message WHERE status = 'sent'")
        return cursor.fetchone()[0]


class Watch:
    """Times one operation; while it runs, samples what the other database sessions are doing, and
    prints those samples when it took more than 3 s (what it waited on: a lock, I/O, a statement)."""

    def __init__(self, label: str):
        self.label, self.samples = label, []

    def __enter__(self) -> "Watch":
        import threading

        import psycopg
        from django.db import connection

        params = connection.get_connection_params()
        self.stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(**params, autocommit=True) as mon:
                while not self.stop.wait(0.5):
                    self.samples.append((round(time.perf_counter() - self.started, 1), mon.execute(
                        "SELECT pid, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 100), "
                        "round(extract(epoch FROM now() - query_start)::numeric, 1) FROM pg_stat_activity "
                        "WHERE state = 'active' AND pid <> pg_backend_pid()").fetchall()))

        self.thread = threading.Thread(target=sample, daemon=True)
        self.started = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        took = time.perf_counter() - self.started
        self.stop.set()
        self.thread.join()
        print(f"{self.label}: {took:.1f} s")
        if took > 3:
            for at, rows in self.samples:
                for row in rows:
                    print(f"    +{at} s {row}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    send_seconds = float(os.environ.get("BENCH_SEND_SECONDS", "60"))
    env = Env()
    try:
        from comms.campaigns.models import Segment  # noqa: F811
        from comms.campaigns.services import campaign_create, campaign_progress, campaign_schedule
        from comms.services import tenant_get_default

        tenant = tenant_get_default()
        print(f"directory: {n:,} recipients written in {make_directory(n):.1f} s (setup)")
        make_template()
        Segment.objects.create(tenant=tenant, name="everyone", filter={"all": [{"field": "locale", "op": "eq",
                                                                                "value": "en-US"}]})
        campaign = campaign_create(tenant=tenant, data={"name": "Winter sale", "channels": ["email"],
                                                        "template": "winter_sale", "variables": {"discount": 20},
                                                        "audience": {"segment": "everyone"}})
        # Phase 1, time to fully queued: the fan-out alone (what one bulk worker's task does), timed from
        # "schedule" (audience count included) to the last chunk committed.
        from django.db import connection

        from comms.campaigns.fanout import campaign_fanout
        from comms.campaigns.services import campaigns_tick

        load = os.getloadavg()[0]
        started = time.perf_counter()
        campaign_schedule(tenant=tenant, campaign_id=campaign.id)
        campaigns_tick()  # running; the fan-out task it dispatches finds every chunk written and skips them
        from django.utils import timezone

        first_chunk: list[float] = []

        def clock():  # the fan-out reads the clock once per chunk, before writing it
            first_chunk.append(time.perf_counter() - started)
            return timezone.now()

        stats = campaign_fanout(campaign_id=campaign.id, now_fn=clock)
        queued_s = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM delivery_message WHERE status = 'queued'")
            claimable = cursor.fetchone()[0]
        print(f"fan-out: {stats.rows:,} rows in {stats.chunks} COPY chunks, fully written {queued_s:.1f} s after "
              f"schedule ({stats.rows / queued_s:,.0f} rows/s; load average {load:.1f} at start)")
        print(f"first chunk claimable {first_chunk[1] if len(first_chunk) > 1 else first_chunk[0]:.1f} s after "
              f"schedule; {claimable:,} rows queued for workers now, the rest held for the pump")
        # Phase 2, sending: what `make run` runs (2 bulk workers, the urgent pool for beat's ticks, beat with
        # the router tick every 2 s so the pump keeps releasing chunks).
        workers = [env.celery("p2,p3,p4", 1, f"bulk{i}") for i in range(2)]  # noqa: the first may run the fan-out task
        workers.append(env.celery("p0,p1", 1, "urgent"))
        workers.append(env.spawn([sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "warning", "-s",
                                  str(env.root / "beat-schedule")], COMMS_ROUTER_TICK_SECONDS="2"))
        import socket

        for _ in range(300):  # the sink process must answer before the workers send (else retries back off)
            try:
                socket.create_connection(("127.0.0.1", env.sink_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        spawned = time.perf_counter()
        while not sent_count() and time.perf_counter() - spawned < 600:  # worker boot is slow on a busy machine
            time.sleep(0.2)
        print(f"first email in the sink {time.perf_counter() - spawned:.1f} s after starting the worker processes")
        time.sleep(5)
        before, t0 = sent_count(), time.perf_counter()
        time.sleep(send_seconds)
        after, t1 = sent_count(), time.perf_counter()
        print(f"send rate into the sink: {(after - before) / (t1 - t0):,.0f} emails/s over {t1 - t0:.0f} s "
              f"(2 bulk worker processes; {after:,} sent so far; load average {os.getloadavg()[0]:.1f})")
        campaign.refresh_from_db()
        t = time.perf_counter()
        progress = campaign_progress(campaign)
        print(f"progress query: {time.perf_counter() - t:.2f} s -> {progress}")
        from comms.campaigns.services import campaign_cancel, campaign_pause, campaign_resume

        with Watch("pause"):
            campaign_pause(tenant=tenant, campaign_id=campaign.id)
        with Watch("resume"):
            campaign_resume(tenant=tenant, campaign_id=campaign.id)
        with Watch("cancel"):
            _, effect = campaign_cancel(tenant=tenant, campaign_id=campaign.id)
        print(f"  cancel -> {effect}")
        for worker in workers:
            env.stop(worker)
    finally:
        env.close()


if __name__ == "__main__":
    main()

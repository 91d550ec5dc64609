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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    send_seconds = float(os.environ.get("BENCH_SEND_SECONDS", "60"))
    env = Env()
    try:
        from comms.campaign_models import Segment  # noqa: F811
        from comms.campaign_models import Campaign
        from comms.campaigns import campaign_create, campaign_progress, campaign_schedule
        from comms.services import tenant_get_default

        tenant = tenant_get_default()
        print(f"directory: {n:,} recipients written in {make_directory(n):.1f} s (setup)")
        make_template()
        Segment.objects.create(tenant=tenant, name="everyone", filter={"all": [{"field": "locale", "op": "eq",
                                                                                "value": "en-US"}]})
        campaign = campaign_create(tenant=tenant, data={"name": "Winter sale", "channels": ["email"],
                                                        "template": "winter_sale", "variables": {"discount": 20},
                                                        "audience": {"segment": "everyone"}})
        # What `make run` runs: bulk workers (they also run the fan-out task), the urgent pool (beat's
        # ticks) and beat itself, with the router tick every 2 s.
        workers = [env.celery("p2,p3,p4", 1, f"bulk{i}") for i in range(2)]
        workers.append(env.celery("p0,p1", 1, "urgent"))
        workers.append(env.spawn([sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "warning", "-s",
                                  str(env.root / "beat-schedule")], COMMS_ROUTER_TICK_SECONDS="2"))
        time.sleep(4)
        started = time.perf_counter()
        campaign_schedule(tenant=tenant, campaign_id=campaign.id)  # commits, then starts the fan-out task
        first_sent = None
        while True:
            row = Campaign.objects.values("fanout_done", "queued_count").get(pk=campaign.id)
            if first_sent is None and sent_count():
                first_sent = f"{time.perf_counter() - started:.1f} s after schedule"
            if row["fanout_done"]:
                break
            time.sleep(0.1)
        queued_s = time.perf_counter() - started
        rows = row["queued_count"]
        print(f"fan-out (in a bulk worker): {rows:,} rows queued in {queued_s:.1f} s ({rows / queued_s:,.0f} rows/s), "
              f"the other bulk worker sending meanwhile")
        while first_sent is None and time.perf_counter() - started < 120:
            if sent_count():
                first_sent = f"{time.perf_counter() - started:.1f} s after schedule"
            time.sleep(0.1)
        print(f"first email sent: {first_sent}")
        before, t0 = sent_count(), time.perf_counter()
        time.sleep(send_seconds)
        after, t1 = sent_count(), time.perf_counter()
        print(f"send rate into the sink: {(after - before) / (t1 - t0):,.0f} emails/s over {t1 - t0:.0f} s "
              f"(2 worker processes; {after:,} sent so far)")
        campaign.refresh_from_db()
        t = time.perf_counter()
        progress = campaign_progress(campaign)
        print(f"progress query: {time.perf_counter() - t:.2f} s -> {progress}")
        from comms.campaigns import campaign_cancel, campaign_pause, campaign_resume

        t = time.perf_counter()
        campaign_pause(tenant=tenant, campaign_id=campaign.id)
        print(f"pause of the remaining rows: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        campaign_resume(tenant=tenant, campaign_id=campaign.id)
        print(f"resume: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        _, effect = campaign_cancel(tenant=tenant, campaign_id=campaign.id)
        print(f"cancel: {time.perf_counter() - t:.1f} s -> {effect}")
        for worker in workers:
            env.stop(worker)
    finally:
        env.close()


if __name__ == "__main__":
    main()

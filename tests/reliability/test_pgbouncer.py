"""The pipeline behind a real PgBouncer in transaction pooling mode, and R7: PgBouncer restarted mid-drain.

The web and worker processes reach PostgreSQL only through PgBouncer (DATABASE_URL, DATABASE_POOLER=
transaction); the test process checks the outcome on its own direct connection.
"""

from __future__ import annotations

import base64
import json
import runpy
import secrets
import subprocess
import sys
import time

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from delivery.services import SendSpec, message_bulk_enqueue
from tests.conftest import ROOT, serving, wait_for, worker_env
from tests.reliability.nodes import pooled_env
from tests.webhooks.signers import fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _gunicorn(port: int) -> list[str]:
    return ["gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread",
            "--threads", "4", "--log-level", "warning"]


def _statuses(**filters) -> dict[str, int]:
    from django.db.models import Count

    return dict(Message.objects.filter(**filters).values_list("status").annotate(n=Count("id")))


def test_pipeline_through_pgbouncer_in_transaction_mode(api, smtp_sink, pgbouncer, celery_worker):
    """API accept (single and COPY bulk) → real Celery worker → SMTP → provider webhook → status, with
    every web and worker query going through PgBouncer's transaction pool."""
    auth = "postmark:" + secrets.token_urlsafe(12)
    env = {**pooled_env(pgbouncer), "COMMS_POSTMARK_WEBHOOK_AUTH": auth}
    headers = {"Authorization": f"Bearer {api.raw_key}"}
    celery_worker("p0,p1,p2,p3,p4", "pooled", **env)  # boots while gunicorn does
    with serving(_gunicorn, "gunicorn behind pgbouncer", extra_env=env) as url:
        singles = []
        for i in range(6):
            r = httpx.post(f"{url}/api/v1/messages", headers=headers, timeout=30,
                           json={"channel": "email", "to": f"ada{i}@example.com", "subject": "Hi", "body": "b"})
            assert r.status_code == 202, r.text
            singles.append(r.json()["id"])
        bulk = httpx.post(f"{url}/api/v1/messages/bulk", headers=headers, timeout=30, json={
            "channel": "email", "subject": "News", "body": "b", "recipients": [{"to": f"r{i}@example.com"}
                                                                              for i in range(40)]})
        assert bulk.status_code == 202 and bulk.json()["accepted"] == 40, bulk.text
        wait_for(lambda: _statuses() == {Status.SENT: 46}, timeout=60, message="46 messages sent")
        delivered = smtp_sink.by_comms_id()
        assert len(delivered) == 46 and all(len(copies) == 1 for copies in delivered.values())

        basic = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
                 "Content-Type": "application/json"}
        for message in Message.objects.filter(id__in=singles):
            body = fixture("postmark/delivery.json", ref=message.provider_ref, address=message.recipient_address)
            assert httpx.post(f"{url}/webhooks/postmark", content=body, headers=basic, timeout=30).status_code == 200
        wait_for(lambda: _statuses(id__in=singles) == {Status.DELIVERED: 6}, timeout=60,
                 message="webhooks applied by the worker")
        shown = httpx.get(f"{url}/api/v1/messages/{singles[0]}", headers=headers, timeout=30).json()
        assert shown["status"] == Status.DELIVERED
        assert [e["event"] for e in shown["delivery_log"]][-1] == "delivered"
    log = pgbouncer.log()
    # Every process really went through the pool: PgBouncer saw their logins (application_name per process).
    assert log.count("login attempt") >= 3, log[-2000:]


def test_r7_pgbouncer_restart_mid_drain_loses_nothing_and_sends_nothing_twice(tenant, smtp_sink, pgbouncer,
                                                                               celery_worker, tmp_path):
    """kill -9 PgBouncer while a worker drains a backlog, start it again on the same port: every message
    is sent exactly once (outcomes are retried on a fresh connection within the lease; a claim whose
    answer was lost comes back through the lease; beat re-sends the wake-up the failed drain dropped)."""
    n = 300
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="R7", body="b", priority=2),
                         recipients=[{"to": f"r7-{i}@example.com"} for i in range(n)])
    smtp_sink.rcpt_delay = 0.04
    env = {**pooled_env(pgbouncer), "COMMS_LEASE_SECONDS": "5", "COMMS_CRASH_BACKOFF_SECONDS": "0",
           "COMMS_SEND_CONCURRENCY": "8", "COMMS_P2_BATCH": "25", "COMMS_HOUSEKEEPING_SECONDS": "0.5"}
    celery_worker("p0,p1,p2", "r7", **env)
    from tests.reliability.nodes import Node

    beat = Node("beat", tmp_path, env)
    beat.beat()
    try:
        wait_for(lambda: len(smtp_sink.messages) >= n // 4, timeout=60, message="the drain to be under way")
        pgbouncer.restart()
        at_restart = len(smtp_sink.messages)
        assert at_restart < n, "the restart should come mid-drain"
        wait_for(lambda: _statuses() == {Status.SENT: n}, timeout=60, message=f"all {n} sent after the restart")
    finally:
        beat.stop()
    time.sleep(0.5)  # nothing may arrive late either
    delivered = smtp_sink.by_comms_id()
    assert len(delivered) == n
    twice = {k: len(v) for k, v in delivered.items() if len(v) > 1}
    assert not twice, twice
    assert DeliveryLog.objects.filter(event="sent").count() == n
    assert pgbouncer.starts == 2
    print(json.dumps({"sent_before_restart": at_restart, "total": n,
                      "lease_expired": DeliveryLog.objects.filter(event="lease_expired").count()}))


_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connections
from admin_console import stats
depth = {r.status: r.n for r in stats.queue_depth()}
print(json.dumps({"depth": depth, "replica_options": settings.DATABASES["replica"]["OPTIONS"],
                  "default_opened": connections["default"].connection is not None,
                  "replica_opened": connections["replica"].connection is not None}))
"""


def _settings(monkeypatch, **env: str) -> dict:
    """config/settings/base.py (the data stores) evaluated afresh under `env` (its module globals)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config" / "settings" / "base.py"))


def test_pooler_settings_turn_off_what_needs_a_session(monkeypatch):
    pooled = _settings(monkeypatch, DATABASE_POOLER="transaction")["DATABASES"]["default"]
    assert pooled["OPTIONS"]["prepare_threshold"] is None and pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    monkeypatch.delenv("DATABASE_POOLER")
    plain = _settings(monkeypatch)
    assert "DISABLE_SERVER_SIDE_CURSORS" not in plain["DATABASES"]["default"]
    assert (plain["COMMS_STATS_DATABASE"], "replica" in plain["DATABASES"]) == ("default", False)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_POOLER must be"):
        _settings(monkeypatch, DATABASE_POOLER="transactions")


def test_replica_takes_the_dashboard_reads_and_only_those(tenant, pgbouncer):
    """DATABASE_REPLICA_URL (here the same database through PgBouncer, as a stand-in replica): the stats
    reads go there and the primary connection is never opened for them."""
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="s", body="b"),
                         recipients=[{"to": f"q{i}@example.com"} for i in range(3)])
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**worker_env(), "DATABASE_POOLER": "transaction", "DATABASE_REPLICA_URL": pgbouncer.url()})
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["depth"] == {"queued": 3}
    assert (seen["default_opened"], seen["replica_opened"]) == (False, True)
    assert seen["replica_options"]["prepare_threshold"] is None

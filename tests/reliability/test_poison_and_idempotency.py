"""R5: a message that kills its worker every time is dead-lettered after its budget, others unharmed.
R6: fifty concurrent requests with one Idempotency-Key make one message."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from delivery.services import SendSpec, housekeeping_run, message_bulk_enqueue, message_enqueue
from delivery.services.engine import max_attempts
from tests.conftest import ROOT, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

_DRAIN = "import django; django.setup(); from delivery.services import drain_all; drain_all()"


def _worker_run() -> int:
    """One worker process draining everything due; returns its exit code (-9 when the poison hit)."""
    # One send at a time: this test pins the serial engine's accounting (exactly one suspect per crash);
    # tests/delivery/test_concurrent_kill.py covers a crash with many sends in flight.
    env = {**worker_env(), "COMMS_EMAIL_PROVIDER": "tests.reliability.poison.PoisonSmtpProvider",
           "COMMS_LEASE_SECONDS": "1", "DJANGO_SETTINGS_MODULE": "config.settings", "COMMS_SEND_CONCURRENCY": "1"}
    return subprocess.run([sys.executable, "-c", _DRAIN], cwd=ROOT, env=env, timeout=120).returncode


def test_poison_message_is_dead_lettered_after_its_budget_and_spares_its_batch(tenant, smtp_sink, settings):
    settings.COMMS_CRASH_BACKOFF_SECONDS = 0  # no wait between crash loops, so the test is quick
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Hi", body="b", priority=2),
                         recipients=[{"to": f"ok{i}@example.com"} for i in range(12)])
    poison, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="victim@example.com",
                                                              subject="POISON pill", body="b", priority=2))
    crashes = 0
    for _ in range(max_attempts(2) + 3):  # more rounds than the budget: the loop must end by itself
        if _worker_run() == 0:
            break
        crashes += 1
        wait_for(lambda: housekeeping_run().reaped, message="the dead worker's lease to expire")

    poison.refresh_from_db()
    assert (poison.status, poison.failure_code) == (Status.DEAD, "lease_expired")
    assert crashes == max_attempts(2) == poison.attempt_count
    others = Message.objects.exclude(id=poison.id)
    assert sorted(others.values_list("status", "attempt_count").distinct()) == [(Status.SENT, 1)]
    delivered = smtp_sink.by_comms_id()
    assert len(delivered) == 12 and all(len(copies) == 1 for copies in delivered.values())
    in_flight = DeliveryLog.objects.filter(event="lease_expired", data__in_flight=True)
    assert set(in_flight.values_list("message_id", flat=True)) == {poison.id}
    assert _worker_run() == 0  # nothing due any more: the poison does not come back


def test_fifty_concurrent_requests_with_one_idempotency_key_make_one_message(api, web_server):
    body = {"channel": "email", "to": "ada@example.com", "subject": "Once", "body": "only once"}
    headers = {"Authorization": f"Bearer {api.raw_key}", "Idempotency-Key": "storm-1"}

    def post(_):
        return httpx.post(f"{web_server}/api/v1/messages", json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    assert {r.status_code for r in responses} <= {200, 202}, [r.text for r in responses if r.status_code >= 300]
    assert sum(r.status_code == 202 for r in responses) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    assert Message.objects.filter(idempotency_key="storm-1").count() == 1

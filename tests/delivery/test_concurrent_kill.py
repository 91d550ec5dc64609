"""A real Celery worker is SIGKILLed with many sends in flight against a slow relay: every accepted
message is delivered, and none twice beyond the documented window (docs/reliability.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from comms.enums import Status
from delivery.models import Message
from delivery.services import SendSpec, drain_all, housekeeping_run, message_bulk_enqueue
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SLOTS = 16  # the killed worker's sends in flight (COMMS_PROVIDER_CONCURRENCY, one provider)


def test_worker_killed_with_many_sends_in_flight_loses_nothing(tenant, smtp_sink, celery_worker):
    smtp_sink.latency_ms = 300  # a relay that takes its time: the worker keeps SLOTS sends open at once
    n = 200
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Hi", body="Hello", priority=2),
                         recipients=[{"to": f"user{i}@example.com"} for i in range(n)])
    worker = celery_worker("p2", "victim", COMMS_LEASE_SECONDS="10", COMMS_SEND_CONCURRENCY=str(2 * SLOTS),
                           COMMS_PROVIDER_CONCURRENCY=str(SLOTS))
    wait_for(lambda: len(smtp_sink.messages) >= 40, message="the worker to be well into its batch")
    wait_for(lambda: smtp_sink.in_data >= SLOTS // 2, message="many sends in flight")
    worker.kill()
    # The relay finishes the DATA it was holding: it has those messages, the dead worker never saw the
    # 250 (RFC 1047's window, here once per send in flight).
    wait_for(lambda: smtp_sink.in_data == 0, message="the relay to finish what it was holding")
    stranded = Message.objects.filter(status=Status.SENDING).count()
    assert stranded > 0, "the kill should leave leased rows behind"
    before = len(smtp_sink.messages)

    assert housekeeping_run().reaped == 0  # not yet expired: housekeeping leaves the lease alone
    later = timezone.now() + timedelta(seconds=11)
    assert housekeeping_run(now=later).reaped == stranded
    smtp_sink.latency_ms = 0
    drain_all(clock=lambda: later + timedelta(seconds=settings.COMMS_CRASH_BACKOFF_SECONDS))

    assert Message.objects.filter(status=Status.SENT).count() == n  # every accepted message delivered
    delivered = smtp_sink.by_comms_id()
    assert len(delivered) == n
    twice = sum(len(copies) - 1 for copies in delivered.values())
    assert max(len(copies) for copies in delivered.values()) <= 2
    assert twice <= SLOTS, f"{twice} duplicates: more than the sends in flight of the killed process"
    assert len(smtp_sink.messages) - before == stranded  # the retry sent exactly the stranded rows

"""A real Celery worker is SIGKILLed while advancing journey runs: nothing is lost (its leased runs come
back when the lease lapses) and no step runs twice (one message per run, unique (run, seq))."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from comms.models import Recipient
from comms.router.journeys import journey_save, journeys_advance
from comms.router.models import JourneyRun, JourneyStep
from delivery.models import Message
from tests.comms.journey_fixtures import CART, ingest, journey_templates, shopper
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

N = 1500
HELLO = {"entry": {"api": True}, "start": "hello",
         "steps": {"hello": {"type": "send", "template": "welcome_1", "channels": ["email"], "next": "rest"},
                   "rest": {"type": "wait", "seconds": 86400}}}


def test_worker_killed_mid_batch_loses_nothing_and_sends_once(tenant, celery_worker):
    journey_templates(tenant)
    version, _ = journey_save(tenant=tenant, key="hello", definition=HELLO)
    people = Recipient.objects.bulk_create(
        Recipient(tenant=tenant, external_id=f"p{i}", email=f"p{i}@example.com") for i in range(N))
    now = timezone.now()
    JourneyRun.objects.bulk_create(
        JourneyRun(tenant=tenant, journey=version.journey, version=version, recipient=p, step="hello",
                   next_due_at=now, entered_at=now, context={"entry": {}}) for p in people)

    worker = celery_worker("p1", "victim", COMMS_JOURNEY_LEASE_SECONDS="600", COMMS_JOURNEY_TICK_SECONDS="300")
    current_app.send_task("comms.router.journeys_wake", args=[None], queue="p1")
    leased = JourneyRun.objects.filter(state="active").exclude(lease_owner="")
    # A batch commits as a whole: kill once one has committed and the next is claimed and in flight.
    wait_for(lambda: JourneyStep.objects.filter(kind="send").count() >= 200 and leased.exists(), timeout=180,
             message="the worker to be well into its runs")
    worker.kill()

    done = JourneyStep.objects.filter(kind="send").count()
    assert done < N, "the kill should land before the worker finished"
    stranded = JourneyRun.objects.filter(state="active").exclude(lease_owner="")
    assert stranded.exists(), "the kill should leave leased runs behind"
    # Every run the worker finished committed its step and its message together.
    assert Message.objects.count() == done
    held = set(stranded.values_list("id", flat=True))
    # Runs the dead worker never claimed are free now; the ones it holds stay its own until the lease lapses.
    assert journeys_advance(now=timezone.now(), limit=N).claimed == N - done - len(held)
    assert set(JourneyRun.objects.filter(state="active").values_list("id", flat=True)) == held

    later = timezone.now() + timedelta(seconds=601)
    while journeys_advance(now=later, limit=1000).claimed:
        pass
    assert JourneyRun.objects.filter(state="waiting", step="rest").count() == N  # nothing lost
    per_run = Counter(JourneyStep.objects.filter(kind="send").values_list("run_id", flat=True))
    assert len(per_run) == N and set(per_run.values()) == {1}  # no step ran twice
    assert Message.objects.count() == N
    assert len(set(Message.objects.values_list("idempotency_key", flat=True))) == N


def test_events_enter_and_wake_runs_at_once_through_the_worker(tenant, celery_worker):
    """No tick, no explicit advance: the wake-up task queued on commit moves the runs."""
    journey_templates(tenant)
    journey_save(tenant=tenant, key="cart", definition=CART)
    shopper(tenant, "bea")
    celery_worker("p1", "waker")
    ingest(tenant, "cart.abandoned", ["bea"], {"cart_id": "C1", "total": 5}, timezone.now(), cause_ref="c1")
    wait_for(lambda: JourneyRun.objects.filter(state="waiting", waiting_for="order.placed").exists(), timeout=120,
             message="the entered run to start its wait")
    ingest(tenant, "order.placed", ["bea"], {"cart_id": "C1"}, timezone.now(), cause_ref="o1")
    wait_for(lambda: JourneyRun.objects.filter(state="exited").exists(), timeout=60,
             message="the woken run to leave its wait")
    assert list(JourneyStep.objects.order_by("seq").values_list("step", "outcome")) == [
        ("wait_order", "waiting"), ("wait_order", "event"), ("bought", "exited")]

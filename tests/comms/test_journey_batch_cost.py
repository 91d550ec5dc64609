"""What one batch of journey sends costs in look-ups: the template once per batch, the recipient never
re-loaded, one preference decision per send (the router's, handed to the enqueue), and no idempotency
probe before the message insert."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comms.router.journeys import journey_save
from comms.router.models import JourneyRun
from delivery.models import Message
from tests.comms.journey_fixtures import advance, journey_templates, shopper

pytestmark = pytest.mark.django_db


def test_a_batch_of_sends_looks_each_thing_up_once(tenant):
    journey_templates(tenant)
    version, _ = journey_save(tenant=tenant, key="batchcost", definition={
        "entry": {"api": True}, "start": "email",
        "steps": {"email": {"type": "send", "template": "cart_email", "channels": ["email"],
                            "category": "transactional"}}})
    people = [shopper(tenant, f"bc{i}") for i in range(6)]
    now = timezone.now()
    runs = JourneyRun.objects.bulk_create(
        JourneyRun(tenant=tenant, journey=version.journey, version=version, recipient=p, step="email",
                   next_due_at=now, entered_at=now, context={"entry": {"cart_id": "C1", "total": 3}}) for p in people)
    with CaptureQueriesContext(connection) as seen:
        stats = advance(now)
    assert stats.advanced == 6
    sql = [q["sql"] for q in seen.captured_queries]
    assert sum(s.startswith('SELECT "templates_app_template"') for s in sql) == 1  # was one twice per run
    assert sum(s.startswith('SELECT "comms_recipient"') for s in sql) == 0  # the enqueue re-loaded it per run
    assert sum("FROM preferences_suppression" in s for s in sql) == 6  # one decision per send, not two
    # the run + step key is new (its step row commits with the message): no probe before the insert
    assert sum(s.startswith('SELECT "delivery_message"') for s in sql) == 0
    keys = set(Message.objects.filter(tenant=tenant).values_list("idempotency_key", flat=True))
    assert keys == {f"journey:{r.id}:1" for r in runs}

"""The same event posted many times at once, to the real web tier: each message exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from comms.models import Scope
from comms.router.models import Event
from comms.services import api_key_create
from delivery.models import Message
from tests.comms.router_fixtures import booking_templates, person, rule

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_duplicates_produce_each_message_once(tenant, web_server):
    booking_templates(tenant)
    person(tenant, "ada")
    person(tenant, "bob")
    rule(tenant, "booking.confirmed", {"template": "booking_confirmed", "channels": ["email", "in_app"]},
         {"template": "booking_confirmed", "channels": ["in_app"], "when": "payload.status == 'confirmed'"},
         dedupe={"key": "BOOKING:{payload.booking_id}:{payload.status}"})
    _, raw = api_key_create(tenant=tenant, name="load", scopes=[Scope.MESSAGES_SEND])
    headers = {"Authorization": f"Bearer {raw}"}
    same = {"name": "booking.confirmed", "recipients": ["ada", "bob"], "cause_ref": "booking-42-confirmed",
            "payload": {"booking_id": "42", "status": "confirmed"}}

    def post(i: int) -> int:
        # Half replay the same cause_ref; the other half are the same booking change under new cause_refs
        # (what a retrying producer emitting fresh ids looks like): the dedupe window catches those.
        body = same if i % 2 == 0 else {**same, "cause_ref": f"retry-{i}"}
        with httpx.Client(base_url=web_server, headers=headers, timeout=30) as client:
            return client.post("/api/v1/events", json=body).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, range(32)))
    assert set(codes) <= {200, 202}
    assert Message.objects.count() == 4  # 2 recipients x 2 steps
    assert Message.objects.filter(channel="email").count() == 2
    assert Event.objects.filter(state="routed").count() == 1
    assert Event.objects.filter(cause_ref="booking-42-confirmed").count() == 1

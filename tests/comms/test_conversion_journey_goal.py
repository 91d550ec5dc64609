"""A conversion routed as an event (POST /messages/{id}/conversions with "event") reaches a journey's goal:
the welcome journey's day-1 e-mail goes out through the SMTP sink, its conversion ends the run as
converted, counts in the metrics, and a retry neither counts nor routes again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.router.journeys import journey_save
from comms.router.models import Event, JourneyStep
from delivery.models import Message
from delivery.services import drain_all
from tests.comms.journey_fixtures import WELCOME, advance, ingest, journey_templates, run_of, shopper
from tracking.models import CampaignMetrics, EventType, MessageEvent

pytestmark = pytest.mark.django_db


def test_a_conversion_routed_as_the_goal_event_converts_the_run(tenant, api, smtp_sink):
    journey_templates(tenant)
    journey_save(tenant=tenant, key="welcome", definition=WELCOME)
    ada = shopper(tenant, "ada")
    t0 = timezone.now()
    ingest(tenant, "user.signed_up", ["ada"], {}, t0)
    advance(t0)
    drain_all()
    [day1] = Message.objects.all()
    assert day1.sent_at is not None and smtp_sink.by_comms_id()[str(day1.id)]
    assert run_of(ada).step == "w1"

    url = f"/api/v1/messages/{day1.id}/conversions"
    body = {"value": "9.99", "currency": "USD", "event": "subscription.started"}
    made = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert made.status_code == 201, made.json()
    event = made.json()["event"]
    assert event["state"] == "routed" and event["outcome"][0]["action"] == "converted"
    run = run_of(ada)
    assert run.state == "converted" and run.next_due_at is None
    stored = Event.objects.get(name="subscription.started")
    assert stored.payload["message_id"] == str(day1.id) and stored.payload["value"] == "9.99"

    retry = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    assert retry.status_code == 200 and retry.json()["event"]["id"] == event["id"]
    assert Event.objects.filter(name="subscription.started").count() == 1
    assert JourneyStep.objects.filter(kind="goal").count() == 1
    assert MessageEvent.objects.filter(event_type=EventType.CONVERTED).count() == 1
    assert CampaignMetrics.objects.get(scope="template_version", key=str(day1.template_version_id)).converted_count == 1
    assert advance(t0 + timedelta(days=30)).claimed == 0  # nothing more is sent to a converted run


def test_an_event_for_an_address_only_message_is_refused_and_nothing_is_recorded(tenant, api, smtp_sink):
    journey_templates(tenant)
    sent = api.post("/api/v1/messages", {"channel": "email", "to": "walk-in@example.com", "subject": "Hi",
                                         "body": "Hello"}, format="json")
    assert sent.status_code in (200, 201, 202), sent.json()
    drain_all()
    message = Message.objects.get()
    refused = api.post(f"/api/v1/messages/{message.id}/conversions", {"event": "subscription.started"},
                       format="json")
    assert (refused.status_code, refused.json()["code"]) == (422, "COMMS_CONVERSION_NO_RECIPIENT")
    assert not MessageEvent.objects.filter(event_type=EventType.CONVERTED).exists()  # one transaction
    assert api.post(f"/api/v1/messages/{message.id}/conversions", {}, format="json").status_code == 201

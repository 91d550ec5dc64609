"""Events through routing rules: conditions, fallback, delay, escalation, dedupe, dry run, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.router.escalations import escalations_run
from comms.router.models import Escalation, Event
from delivery.models import InAppNotification, Message
from delivery.services import drain_all
from comms.redis import redis_client
from tests.comms.router_fixtures import booking_templates, person, rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(tenant):
    booking_templates(tenant)
    person(tenant, "ada")
    person(tenant, "bob", email=False)
    return tenant


def _post(api, **body):
    body.setdefault("payload", {"booking_id": "B1", "status": "confirmed", "amount": 150})
    return api.post("/api/v1/events", {"name": "booking.confirmed", **body}, format="json")


def test_conditions_choose_steps_and_explain_why(api, setup):
    rule(setup, "booking.confirmed",
         {"name": "big", "template": "booking_confirmed", "channels": ["email"], "when": "payload.amount > 100"},
         {"name": "inbox", "template": "booking_confirmed", "channels": ["in_app"]})
    small = _post(api, recipients=["ada"], cause_ref="c-small", payload={"booking_id": "B1", "amount": 50})
    assert small.status_code == 202, small.json()
    outcome = small.json()["outcome"]
    assert [o["action"] for o in outcome] == ["skip", "send"]
    assert "not met" in outcome[0]["reason"]
    big = _post(api, recipients=["ada"], cause_ref="c-big")
    assert [o["action"] for o in big.json()["outcome"]] == ["send", "send"]
    assert Message.objects.filter(channel="email").count() == 1
    assert Message.objects.filter(channel="in_app").count() == 2
    missing = _post(api, recipients=["ada"], cause_ref="c-missing", payload={"booking_id": "B2"})
    assert missing.json()["outcome"][0]["action"] == "skip"  # payload.amount absent: condition not met
    assert "missing" in missing.json()["outcome"][0]["reason"]


def test_channels_fall_back_in_order(api, setup):
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["sms", "email", "in_app"]})
    body = _post(api, recipients=["ada", "bob"], cause_ref="c1").json()
    ada, bob = body["outcome"]
    assert ada["channel"] == "email" and ada["fallback"] == ["in_app"] and "sms: no" in ada["reason"]
    assert bob["channel"] == "in_app" and "email: no address" in bob["reason"]
    message = Message.objects.get(recipient__external_id="ada")
    assert message.fallback_channels == ["in_app"]
    assert message.metadata["event"] == "booking.confirmed" and message.metadata["cause_ref"] == "c1"


def test_delay_schedules_the_message(api, setup):
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["email"], "delay_seconds": 600})
    before = timezone.now()
    _post(api, recipients=["ada"], cause_ref="c1")
    message = Message.objects.get()
    assert message.status == "scheduled"
    assert message.scheduled_for >= before + timedelta(seconds=600)


def test_same_event_twice_and_dedupe_window(api, setup):
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["email"]},
         dedupe={"key": "BOOKING:{payload.booking_id}:{payload.status}"})
    first = _post(api, recipients=["ada"], cause_ref="evt-1")
    again = _post(api, recipients=["ada"], cause_ref="evt-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    other_cause = _post(api, recipients=["ada"], cause_ref="evt-2")  # same booking+status, new cause_ref
    assert other_cause.status_code == 202
    assert other_cause.json()["state"] == "duplicate" and other_cause.json()["code"] == "COMMS_DEDUPLICATED"
    assert 0 < redis_client().ttl(f"comms:dedupe:{setup.id}:BOOKING:B1:confirmed") <= 300
    changed = _post(api, recipients=["ada"], cause_ref="evt-3", payload={"booking_id": "B1", "status": "cancelled"})
    assert changed.json()["state"] == "routed"
    assert Message.objects.count() == 2
    key = Message.objects.order_by("id").first().idempotency_key
    assert key.startswith("evt:booking_confirmed:v1:")


def test_unknown_event_is_stored_and_answered_no_route(api, setup):
    response = api.post("/api/v1/events", {"name": "nobody.listens", "recipients": ["ada"]}, format="json")
    assert response.status_code == 202
    assert response.json()["code"] == "COMMS_NO_ROUTE"
    assert Event.objects.get(name="nobody.listens").state == "no_route"
    assert not Message.objects.exists()


def test_missing_template_variable_is_a_typed_outcome(api, setup):
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["email"]})
    body = _post(api, recipients=["ada", "ghost"], cause_ref="c1", payload={"status": "x"}).json()
    assert body["state"] == "failed"
    assert [o["code"] for o in body["outcome"]] == ["COMMS_TEMPLATE_MISSING_VAR", "COMMS_RECIPIENT_NOT_FOUND"]


def test_rule_schema_errors_name_the_path(admin_api, setup):
    bad = admin_api.put("/api/v1/rules/booking.confirmed", {"definition": {"steps": [
        {"template": "booking_confirmed", "channels": ["email", "fax"]}]}}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "COMMS_RULE_INVALID" and bad.json()["details"]["path"] == "$.steps[0].channels[1]"
    unsafe = admin_api.put("/api/v1/rules/booking.confirmed", {"definition": {"steps": [
        {"template": "t", "channels": ["email"], "when": "__import__('os').system('true')"}]}}, format="json")
    assert unsafe.status_code == 400 and unsafe.json()["details"]["path"] == "$.steps[0].when"
    good = {"steps": [{"template": "booking_confirmed", "channels": ["email"]}]}
    assert admin_api.put("/api/v1/rules/booking.confirmed", {"definition": good}, format="json").json()[
        "active_version"] == 1
    good["steps"][0]["delay_seconds"] = 5
    assert admin_api.put("/api/v1/rules/booking.confirmed", {"definition": good}, format="json").json()[
        "active_version"] == 2


def test_escalation_when_in_app_item_stays_unread(api, setup):
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["in_app"],
                                      "escalation": {"after_seconds": 1800, "channels": ["email"]}})
    now = timezone.now()
    _post(api, recipients=["ada"], cause_ref="unread")
    _post(api, recipients=["ada"], cause_ref="read")
    assert drain_all().sent == 2
    read_msg = Message.objects.get(metadata__cause_ref="read")
    InAppNotification.objects.filter(message=read_msg).update(read_at=now + timedelta(minutes=5))
    assert escalations_run(now=now + timedelta(minutes=29)).escalated == 0  # not due yet
    stats = escalations_run(now=now + timedelta(minutes=31))
    assert (stats.escalated, stats.resolved) == (1, 1)
    email = Message.objects.get(channel="email")
    assert email.metadata["escalation_of"] == str(Message.objects.get(metadata__cause_ref="unread").id)
    assert Escalation.objects.get(message_id=read_msg.id).state == "resolved"
    assert escalations_run(now=now + timedelta(hours=2)).escalated == 0  # once only


def test_dry_run_explains_and_writes_nothing(api, setup):
    rule(setup, "booking.confirmed",
         {"template": "booking_confirmed", "channels": ["email"], "when": "payload.amount > 100"},
         {"template": "booking_confirmed", "channels": ["sms"]},
         dedupe={"key": "BOOKING:{payload.booking_id}"})
    response = api.post("/api/v1/events/dry-run", {"event": {
        "name": "booking.confirmed", "recipients": ["ada", "bob"],
        "payload": {"booking_id": "B1", "amount": 500}}}, format="json")
    assert response.status_code == 200, response.json()
    plans = response.json()["plans"]
    assert [(p["recipient"], p["action"]) for p in plans] == [
        ("ada", "send"), ("bob", "blocked"), ("ada", "blocked"), ("bob", "blocked")]
    assert plans[0]["decision"] == "allow" and plans[0]["template_version"] == 1
    assert "email: no address" in plans[1]["reason"]
    assert not Message.objects.exists() and not Event.objects.exists()
    assert not redis_client().exists(f"comms:dedupe:{setup.id}:BOOKING:B1")
    unsaved = api.post("/api/v1/events/dry-run", {"event": {"name": "x.y", "recipients": ["ada"], "payload": {}},
                                                  "definition": {"steps": [{"template": "nope", "channels": ["email"]}]}},
                       format="json").json()
    assert unsaved["plans"][0]["code"] == "COMMS_TEMPLATE_NOT_FOUND"


def test_batch_form_answers_each_event(api, setup):
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["email"]})
    response = api.post("/api/v1/events/batch", {"events": [
        {"name": "booking.confirmed", "recipients": ["ada"], "cause_ref": "b1", "payload": {"booking_id": "1"}},
        {"name": "booking.confirmed", "recipients": ["ada"], "cause_ref": "b1", "payload": {"booking_id": "1"}},
        {"name": "booking.confirmed", "recipinets": ["ada"]},
    ]}, format="json")
    assert response.status_code == 202
    results = response.json()["results"]
    assert results[0]["created"] is True and results[1]["created"] is False
    assert results[2]["error"]["code"] == "COMMS_UNKNOWN_FIELD"
    assert Message.objects.count() == 1


def test_segment_audience_small_and_bulk(api, setup, settings, smtp_sink):
    from comms.campaigns.models import Segment

    person(setup, "cy", plan="pro")
    person(setup, "di", plan="pro")
    person(setup, "ed", plan="pro")
    Segment.objects.create(tenant=setup, name="pro", filter={"all": [{"field": "attributes.plan", "op": "eq",
                                                                      "value": "pro"}]})
    rule(setup, "booking.confirmed", {"template": "booking_confirmed", "channels": ["email"]})
    small = _post(api, audience={"segment": "pro"}, cause_ref="a1").json()
    assert sorted(o["recipient"] for o in small["outcome"]) == ["cy", "di", "ed"]
    assert Message.objects.filter(batch__isnull=True).count() == 3
    settings.COMMS_EVENT_BULK_THRESHOLD = 2
    bulk = _post(api, audience={"segment": "pro"}, cause_ref="a2").json()
    assert bulk["outcome"][0]["action"] == "bulk" and bulk["outcome"][0]["recipient"] == "audience (3)"
    assert Message.objects.filter(batch__isnull=False).count() == 3
    assert drain_all().sent == 6
    unknown = _post(api, audience={"segment": "nope"}, cause_ref="a3")
    assert unknown.status_code == 400 and unknown.json()["code"] == "COMMS_AUDIENCE_INVALID"

"""Journeys end to end through the real pipeline (intake, rule step runner, preferences, engine, SMTP
sink, Twilio and FCM stand-ins, open pixel), with time moved by passing `now=`."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from comms.router.journeys import journey_save
from comms.router.models import Event, JourneyRun, JourneyStep
from delivery.models import Message
from delivery.services import drain_all
from tests.comms.journey_fixtures import (
    CART, WELCOME, advance, hours, ingest, journey_templates, run_of, shopper,
)
from tracking.links import open_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tenant):
    journey_templates(tenant)
    return tenant


def _drain(at):
    return drain_all(clock=lambda: at)


def test_abandoned_cart(shop, smtp_sink, twilio, fcm, client, api):  # noqa: F811
    journey_save(tenant=shop, key="cart", definition=CART)
    opener = shopper(shop, "olga", phone=True)
    ignorer = shopper(shop, "ivan", push=True)
    buyer = shopper(shop, "bea", phone=True)
    t0 = timezone.now()
    for who in ("olga", "ivan", "bea"):
        ingest(shop, "cart.abandoned", [who], {"cart_id": f"C-{who}", "total": 30}, t0, cause_ref=f"cart-{who}")
    ingest(shop, "cart.abandoned", ["olga"], {"cart_id": "C-x", "total": 0}, t0)  # entry condition not met
    assert JourneyRun.objects.count() == 3
    assert advance(t0).advanced == 3
    assert {r.state for r in JourneyRun.objects.all()} == {"waiting"}
    assert run_of(buyer).waiting_for == "order.placed"

    # bea orders within the hour (another cart's order first: the wait's condition keeps her waiting)
    ingest(shop, "order.placed", ["bea"], {"cart_id": "C-other"}, t0 + hours(0.2))
    assert run_of(buyer).state == "waiting"
    ingest(shop, "order.placed", ["bea"], {"cart_id": "C-bea"}, t0 + hours(0.5), cause_ref="o-1")
    assert advance(t0 + hours(0.5)).advanced == 1
    bea = run_of(buyer)
    assert (bea.state, bea.exit_reason) == ("exited", "bought within the hour")

    advance(t0 + hours(0.99))
    assert Message.objects.count() == 0  # nothing before the hour is up
    assert advance(t0 + hours(1)).advanced == 2
    emails = Message.objects.filter(channel="email")
    assert sorted(m.recipient.external_id for m in emails) == ["ivan", "olga"]
    _drain(t0 + hours(1))
    assert len(smtp_sink.messages) == 2
    olga_email = emails.get(recipient=opener)
    assert olga_email.metadata["journey"] == "cart" and olga_email.metadata["journey_step"] == "email"
    assert client.get(f"/o/{open_token(olga_email.id)}.gif").status_code == 200  # olga opens it

    assert advance(t0 + hours(24.5)).advanced == 0  # the day is not over
    assert advance(t0 + hours(25)).advanced == 2
    _drain(t0 + hours(25))
    assert [m["To"] for m in twilio.messages] == ["+14155550100"] and "C-olga" in twilio.messages[0]["Body"]
    assert list(fcm.by_token()) == ["tok-ivan"]
    for who, last in ((opener, "sms"), (ignorer, "push")):
        run = run_of(who)
        assert run.state == "exited"
        assert [p[0] for p in run.path] == ["wait_order", "wait_order", "email", "wait_day", "wait_day", "opened?",
                                            last, "done"]
    assert Message.objects.filter(metadata__journey="cart").count() == 4
    timeline = api.get(f"/api/v1/journeys/cart/runs/{run_of(opener).id}").json()["timeline"]
    assert [(s["step"], s["outcome"]) for s in timeline] == [
        ("wait_order", "waiting"), ("wait_order", "timeout"), ("email", "sent"), ("wait_day", "waiting"),
        ("wait_day", "elapsed"), ("opened?", "sms"), ("sms", "sent"), ("done", "exited")]
    stats = {s["step"]: s for s in api.get("/api/v1/journeys/cart/stats").json()["steps"]}
    assert stats["opened?"]["outcomes"] == {"sms": 1, "push": 1}
    assert stats["wait_order"]["entered"] == 3 and stats["wait_order"]["outcomes"]["event"] == 1
    assert stats["bought"]["outcomes"] == {"exited": 1}


def test_welcome_drip_over_five_days_and_local_morning(shop, smtp_sink):
    journey_save(tenant=shop, key="welcome", definition=WELCOME)
    ada = shopper(shop, "ada", tz="America/New_York")
    t0 = timezone.now()
    ingest(shop, "user.signed_up", ["ada"], {}, t0)
    advance(t0)
    assert Message.objects.filter(template_version__template__template_key="welcome_1").count() == 1
    advance(t0 + timedelta(days=2))
    advance(t0 + timedelta(days=4))
    run = run_of(ada)
    assert run.step == "morning" and run.state == "waiting"
    local = run.next_due_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5
    assert run.next_due_at - (t0 + timedelta(days=4)) <= timedelta(days=3, hours=1)
    advance(run.next_due_at - timedelta(seconds=1))
    assert run_of(ada).step == "morning"
    advance(run.next_due_at)
    run = run_of(ada)
    assert (run.state, run.exit_reason) == ("completed", "end of the journey")
    keys = list(Message.objects.order_by("created_at").values_list("template_version__template__template_key",
                                                                   flat=True))
    assert keys == ["welcome_1", "welcome_2", "welcome_3"]
    _drain(run.next_due_at or timezone.now() + timedelta(days=7))


def test_goal_event_cancels_a_run_mid_wait(shop, api):
    journey_save(tenant=shop, key="welcome", definition=WELCOME)
    ada = shopper(shop, "ada")
    t0 = timezone.now()
    ingest(shop, "user.signed_up", ["ada"], {}, t0)
    advance(t0)
    assert run_of(ada).step == "w1"
    response = api.post("/api/v1/events", {"name": "subscription.started", "recipients": ["ada"],
                                           "cause_ref": "sub-1"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "routed" and body["outcome"][0]["action"] == "converted"
    run = run_of(ada)
    assert run.state == "converted" and run.converted_at is not None and run.next_due_at is None
    assert advance(t0 + timedelta(days=30)).claimed == 0
    assert Message.objects.count() == 1  # only day 1 went out
    again = api.post("/api/v1/events", {"name": "subscription.started", "recipients": ["ada"], "cause_ref": "sub-1"},
                     format="json")
    assert again.status_code == 200  # the same event again: one advance, nothing more recorded
    assert JourneyStep.objects.filter(kind="goal").count() == 1
    assert Event.objects.filter(name="subscription.started").count() == 1

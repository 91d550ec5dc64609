"""Bad input refused at save with typed errors, and the documented edges: erasure and unsubscribe
mid-run, the same event twice, re-entry, frequency cap, sticky splits, updates, the simulation."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.models import Recipient
from comms.router.journey_engine import split_bucket
from comms.router.journeys import journey_save
from comms.router.models import Journey, JourneyRun, JourneyStep, JourneyVersion
from delivery.models import Message
from preferences.models import UserPreference
from preferences.services import recipient_erase, unsubscribe
from tests.comms.journey_fixtures import (
    CART, WELCOME, advance, definition, hours, ingest, journey_templates, run_of, shopper,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tenant):
    journey_templates(tenant)
    return tenant


def _create(admin_api, body: dict, key: str = "j"):
    return admin_api.post("/api/v1/journeys", {"key": key, "definition": body}, format="json")


def _steps(**steps) -> dict:
    return {"entry": {"api": True}, "start": next(iter(steps)), "steps": steps}


SEND = {"type": "send", "template": "welcome_1", "channels": ["email"]}


def test_cycle_without_a_wait_is_refused_with_a_wait_accepted(shop, admin_api):
    loop = _steps(a={**SEND, "next": "b"}, b={"type": "branch", "cases": [{"when": "recipient.attributes.vip",
                                                                             "next": "a"}], "default": "c"},
                  c={"type": "exit"})
    refused = _create(admin_api, loop)
    assert refused.status_code == 400
    assert refused.json()["code"] == "COMMS_JOURNEY_CYCLE" and refused.json()["details"]["cycle"] == ["a", "b", "a"]
    waited = _steps(a={**SEND, "next": "w"}, w={"type": "wait", "seconds": 60, "next": "b"},
                    b={"type": "branch", "cases": [{"when": "recipient.attributes.vip", "next": "a"}], "default": "c"},
                    c={"type": "exit"})
    assert _create(admin_api, waited).status_code == 201
    self_loop = _steps(a={"type": "update", "attributes": {"x": 1}, "next": "a"})
    assert _create(admin_api, self_loop, "k").json()["code"] == "COMMS_JOURNEY_CYCLE"


def test_branch_without_default_missing_template_and_schema_errors(shop, admin_api):
    no_default = _steps(b={"type": "branch", "cases": [{"when": "payload.x", "next": "e"}]}, e={"type": "exit"})
    body = _create(admin_api, no_default).json()
    assert body["code"] == "COMMS_JOURNEY_BRANCH_DEFAULT" and body["details"]["path"] == "$.steps.b"
    full_split = _steps(b={"type": "branch", "split": [{"percent": 50, "next": "e"}, {"percent": 50, "next": "e"}]},
                        e={"type": "exit"})
    assert _create(admin_api, full_split).status_code == 201  # a split adding up to 100 needs no default
    missing = _create(admin_api, _steps(s={**SEND, "template": "nope"}), "k2")
    assert missing.status_code == 422
    assert missing.json()["code"] == "COMMS_TEMPLATE_NOT_FOUND"
    assert missing.json()["details"]["path"] == "$.steps.s.template"
    dangling = _create(admin_api, _steps(s={**SEND, "next": "ghost"}), "k3").json()
    assert dangling["code"] == "COMMS_JOURNEY_INVALID" and "ghost" in dangling["message"]
    for bad in ({"start": "x"}, _steps(w={"type": "wait"}), _steps(w={"type": "wait", "event": "x"}),
                _steps(s={**SEND, "when": "__import__('os')"}), _steps(s={**SEND, "channels": ["fax"]}), [1], "x"):
        response = _create(admin_api, bad, "k4")
        assert response.status_code == 400 and response.json()["code"] in ("COMMS_JOURNEY_INVALID",
                                                                            "COMMS_VALIDATION_ERROR"), bad
    assert not Journey.objects.filter(key__in=["k2", "k3", "k4"]).exists()
    assert admin_api.get("/api/v1/journeys/none").json()["code"] == "COMMS_NOT_FOUND"
    assert admin_api.get("/api/v1/journeys/j/runs/not-a-uuid").status_code == 404
    assert admin_api.get("/api/v1/journeys/j/runs?state=bogus").json()["code"] == "COMMS_VALIDATION_ERROR"


def test_wait_for_an_event_nothing_emits_is_a_warning(shop, admin_api, api):
    body = _steps(w={"type": "wait", "event": "never.seen", "timeout_seconds": 60})
    created = _create(admin_api, body)
    assert created.status_code == 201
    assert [w["code"] for w in created.json()["warnings"]] == ["COMMS_JOURNEY_EVENT_UNSEEN"]
    api.post("/api/v1/events", {"name": "never.seen", "recipients": []}, format="json")
    checked = admin_api.post("/api/v1/journeys/validate", {"definition": body}, format="json").json()
    assert checked == {"valid": True, "warnings": []}


def test_erasure_mid_run_ends_the_run_and_keeps_nothing(shop):
    journey_save(tenant=shop, key="welcome", definition=WELCOME)
    ada, bob = shopper(shop, "ada"), shopper(shop, "bob")
    t0 = timezone.now()
    ingest(shop, "user.signed_up", ["ada", "bob"], {"secret": "x"}, t0)
    advance(t0)
    recipient_erase(recipient=ada)
    assert not JourneyRun.objects.filter(recipient=ada).exists()
    assert not JourneyStep.objects.filter(recipient=ada).exists()
    advance(t0 + timedelta(days=2))
    assert run_of(bob).step == "w2"  # others go on
    assert not JourneyRun.objects.filter(recipient=ada).exists()


@pytest.mark.parametrize("on_blocked,state,step", [("continue", "waiting", "w2"), ("exit", "exited", "day3")])
def test_unsubscribe_mid_run_blocks_later_sends(shop, smtp_sink, on_blocked, state, step):
    journey_save(tenant=shop, key="welcome", definition=definition(WELCOME, on_blocked=on_blocked))
    ada = shopper(shop, "ada")
    t0 = timezone.now()
    ingest(shop, "user.signed_up", ["ada"], {}, t0)
    advance(t0)
    unsubscribe(recipient=ada, category="marketing", source="test")
    advance(t0 + timedelta(days=2))
    run = run_of(ada)
    assert (run.state, run.step) == (state, step)
    blocked = JourneyStep.objects.get(step="day3")
    assert blocked.outcome == "blocked" and blocked.detail["code"] == "COMMS_PREF_BLOCKED"
    assert Message.objects.count() == 1  # only day 1


def test_same_event_twice_advances_once(shop):
    journey_save(tenant=shop, key="cart", definition=CART)
    bea = shopper(shop, "bea")
    t0 = timezone.now()
    ingest(shop, "cart.abandoned", ["bea"], {"cart_id": "C1", "total": 5}, t0)
    advance(t0)
    for ref in ("order-1", "order-1", "order-1-redelivered"):  # a replay, then the provider's second delivery
        ingest(shop, "order.placed", ["bea"], {"cart_id": "C1"}, t0 + hours(0.1), cause_ref=ref)
    assert advance(t0 + hours(0.1)).advanced == 1
    assert JourneyStep.objects.filter(step="wait_order", outcome="event").count() == 1
    assert run_of(bea).state == "exited"


def test_reentry_policies(shop, api):
    journey_save(tenant=shop, key="once", definition={**_steps(e={"type": "exit"}), "reentry": {"policy": "once"}})
    journey_save(tenant=shop, key="weekly",
                 definition={**_steps(e={"type": "exit"}), "reentry": {"policy": "after", "days": 7}})
    shopper(shop, "ada")
    for key in ("once", "weekly"):
        assert api.post(f"/api/v1/journeys/{key}/enrol", {"recipient": "ada"}, format="json").status_code == 201
    advance(timezone.now())
    for key in ("once", "weekly"):
        again = api.post(f"/api/v1/journeys/{key}/enrol", {"recipient": "ada"}, format="json")
        assert again.status_code == 409 and again.json()["code"] == "COMMS_JOURNEY_NOT_ENTERED"
    JourneyRun.objects.filter(journey__key="weekly").update(entered_at=timezone.now() - timedelta(days=8))
    assert api.post("/api/v1/journeys/weekly/enrol", {"recipient": "ada"}, format="json").status_code == 201
    missing = api.post("/api/v1/journeys/once/enrol", {"recipient": "ghost"}, format="json")
    assert missing.status_code == 422 and missing.json()["code"] == "COMMS_RECIPIENT_NOT_FOUND"


def test_frequency_cap_across_journeys(shop):
    capped = {**_steps(s={**SEND}), "entry": {"event": "user.signed_up"}, "frequency_cap": {"per_day": 1}}
    journey_save(tenant=shop, key="a", definition=capped)
    journey_save(tenant=shop, key="b", definition={**capped, "steps": {"s": {**SEND, "template": "welcome_2"}}})
    ada = shopper(shop, "ada")
    t0 = timezone.now()
    ingest(shop, "user.signed_up", ["ada"], {}, t0)
    advance(t0)
    outcomes = sorted(JourneyStep.objects.filter(recipient=ada).values_list("outcome", flat=True))
    assert outcomes == ["capped", "sent"] and Message.objects.count() == 1


def test_split_is_sticky_and_update_changes_attributes_and_preferences(shop):
    split = _steps(b={"type": "branch", "split": [{"percent": 50, "next": "u"}, {"percent": 50, "next": "e"}]},
                   u={"type": "update", "attributes": {"tier": "gold"},
                      "preferences": [{"category": "marketing", "channel": "sms", "enabled": False}], "next": "e"},
                   e={"type": "exit"})
    journey_save(tenant=shop, key="ab", definition=split)
    arms = Counter(split_bucket(salt="", journey_key="ab", step="b", recipient=f"r{i}") < 50 for i in range(2000))
    assert 900 < arms[True] < 1100
    people = [shopper(shop, f"r{i}", plan="free") for i in range(20)]
    t0 = timezone.now()
    for p in people:
        JourneyRun.objects.create(tenant=shop, journey=Journey.objects.get(key="ab"),
                                  version=JourneyVersion.objects.get(journey__key="ab"), recipient=p, step="b",
                                  next_due_at=t0)
    advance(t0)
    for p in people:
        p.refresh_from_db()
        arm = split_bucket(salt="", journey_key="ab", step="b", recipient=p.external_id) < 50
        assert run_of(p).path[0][1] == ("u" if arm else "e")
        assert p.attributes == ({"plan": "free", "tier": "gold"} if arm else {"plan": "free"})
        assert UserPreference.objects.filter(recipient=p, channel="sms", enabled=False).exists() == arm


def test_simulation_shows_path_and_messages_and_writes_nothing(shop, api, twilio):  # noqa: F811
    journey_save(tenant=shop, key="cart", definition=CART)
    shopper(shop, "olga", phone=True)
    t0 = timezone.now().replace(microsecond=0)
    tables = (Journey, JourneyRun, JourneyStep, Message, Recipient)
    before = [m.objects.count() for m in tables]
    body = {"recipient": "olga", "outcomes": {"email": ["opened"]}, "events": [
        {"name": "cart.abandoned", "at": t0.isoformat(), "payload": {"cart_id": "C1", "total": 9}},
        {"name": "order.placed", "at": (t0 + hours(30)).isoformat(), "payload": {"cart_id": "C1"}}]}
    result = api.post("/api/v1/journeys/cart/simulate", body, format="json").json()
    assert [(s["step"], s["outcome"]) for s in result["path"]] == [
        ("wait_order", "waiting"), ("wait_order", "timeout"), ("email", "sent"), ("wait_day", "waiting"),
        ("wait_day", "elapsed"), ("opened?", "sms"), ("sms", "sent"), ("done", "exited")]
    assert [(m["step"], m["channel"]) for m in result["messages"]] == [("email", "email"), ("sms", "sms")]
    assert result["messages"][0]["at"] == (t0 + hours(1)).isoformat()
    assert result["events"][-1] == {"at": (t0 + hours(30)).isoformat(), "event": "order.placed", "effect": "ignored"}
    bought = api.post("/api/v1/journeys/cart/simulate", {**body, "events": [
        body["events"][0], {**body["events"][1], "at": (t0 + hours(0.5)).isoformat()}]}, format="json").json()
    assert bought["state"] == "exited" and bought["messages"] == []
    assert [m.objects.count() for m in tables] == before
    unsaved = api.post("/api/v1/journeys/simulate", {"recipient": "olga", "enrol": True,
                                                     "definition": _steps(s={**SEND})}, format="json").json()
    assert [m["template"] for m in unsaved["messages"]] == ["welcome_1"] and unsaved["state"] == "completed"
    assert api.post("/api/v1/journeys/simulate", {"recipient": "olga"}, format="json").status_code == 400


def test_a_failing_run_is_undone_alone_and_the_batch_commits(shop):
    """A run whose update is refused (unknown category) fails with its message undone; the others go on."""
    bad = {"entry": {"event": "user.signed_up", "when": "payload.bad"}, "start": "s",
           "steps": {"s": {**SEND, "next": "u"},
                     "u": {"type": "update", "preferences": [{"category": "no-such", "channel": "email",
                                                              "enabled": False}]}}}
    good = {"entry": {"event": "user.signed_up", "when": "not payload.bad"}, "start": "s", "steps": {"s": {**SEND}}}
    journey_save(tenant=shop, key="bad", definition=bad)
    journey_save(tenant=shop, key="good", definition=good)
    ada, bob = shopper(shop, "ada"), shopper(shop, "bob")
    t0 = timezone.now()
    ingest(shop, "user.signed_up", ["ada"], {"bad": True}, t0)
    ingest(shop, "user.signed_up", ["bob"], {"bad": False}, t0)
    stats = advance(t0)
    assert (stats.advanced, stats.failed) == (1, 1)
    failed = run_of(ada)
    assert failed.state == "failed" and failed.exit_reason.startswith("COMMS_UNKNOWN_CATEGORY")
    assert not JourneyStep.objects.filter(recipient=ada).exists() and failed.seq == 0
    assert list(Message.objects.values_list("recipient__external_id", flat=True)) == ["bob"]
    assert run_of(bob).state == "completed"

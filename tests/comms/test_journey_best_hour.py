"""Journeys' send steps with ``send_at: {"best_hour_within": N}``: the message is scheduled at the
recipient's best hour (history ingested as a provider reports it), the run moves on as after any
send, the worker sends at that hour and not before; the simulation shows the time; bad windows are
typed errors at save."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from comms.models import Recipient
from comms.router.journey_definition import journey_validate
from comms.router.journey_simulate import journey_simulate
from comms.router.journeys import journey_save
from comms.router.models import JourneyStep
from delivery.models import Message
from delivery.services import drain_all
from delivery.services.housekeeping import waiting_promote
from tests.comms.journey_fixtures import advance, ingest, run_of
from tests.comms.router_fixtures import live_template, person
from tests.comms.send_time_fixtures import opened_at, weekly

pytestmark = pytest.mark.django_db


def _hour(t0: datetime, k: int) -> datetime:
    return t0.replace(minute=0, second=0, microsecond=0) + timedelta(hours=k)


def _journey(window) -> dict:
    return {"entry": {"event": "signed_up"}, "start": "hello", "steps": {
        "hello": {"type": "send", "template": "promo", "channels": ["email"], "category": "marketing",
                  "send_at": {"best_hour_within": window}, "next": "later"},
        "later": {"type": "wait", "seconds": 86400, "next": "done"},
        "done": {"type": "exit"}}}


@pytest.fixture
def promo(tenant):
    return live_template(tenant, "promo", subject="Hello {{name}}", body_html="<p>Hi {{name}}</p>",
                         schema={"type": "object", "properties": {"name": {"type": "string"}}},
                         sample={"name": "x"}, category="marketing", channels=["email"])


def test_send_step_waits_for_each_recipients_best_hour(admin_api, tenant, promo, smtp_sink):
    t0 = timezone.now().replace(minute=20, second=0, microsecond=0)
    kim, lee, max_ = person(tenant, "kim"), person(tenant, "lee"), person(tenant, "max")
    opened_at(admin_api, {kim: weekly(_hour(t0, 5) + timedelta(minutes=10), 3),
                          max_: weekly(_hour(t0, 8) + timedelta(minutes=10), 10)})
    journey_save(tenant=tenant, key="welcome", definition=_journey(12))
    for who in ("kim", "lee", "max"):
        ingest(tenant, "signed_up", [who], {"name": who}, t0, cause_ref=f"signup-{who}")
    advance(t0)
    # kim: her own habit; max: his; lee has no history: the population's peak (max's hour, most opens)
    expected = {"kim": _hour(t0, 5), "max": _hour(t0, 8), "lee": _hour(t0, 8)}
    rows = Message.objects.filter(metadata__journey="welcome")
    assert {m.recipient.external_id: m.scheduled_for for m in rows} == expected
    assert set(rows.values_list("status", flat=True)) == {"scheduled"}
    for who in expected:  # the run went on at once, as after any send
        run = run_of(person_of(tenant, who))
        assert (run.state, run.step) == ("waiting", "later")
    step = JourneyStep.objects.get(run__recipient__external_id="kim", kind="send")
    assert step.detail["scheduled_for"] == _hour(t0, 5).isoformat()

    for at in (_hour(t0, 5), _hour(t0, 8)):
        due = {who for who, when in expected.items() if when == at}
        early = at - timedelta(minutes=1)
        assert waiting_promote(now=early) == 0 and drain_all(clock=lambda: early).sent == 0  # the beat, a minute early
        assert waiting_promote(now=at) == len(due)  # the beat at the hour queues them
        assert drain_all(clock=lambda: at).sent == len(due)
        assert {m.recipient.external_id for m in rows.filter(status="sent", sent_at__isnull=False)} >= due


def person_of(tenant, external_id: str) -> Recipient:
    return Recipient.objects.get(tenant=tenant, external_id=external_id)


def test_simulation_shows_the_best_hour(admin_api, tenant, promo, smtp_sink):
    t0 = timezone.now().replace(minute=20, second=0, microsecond=0)
    kim = person(tenant, "kim")
    opened_at(admin_api, {kim: weekly(_hour(t0, 5) + timedelta(minutes=10), 3)})
    result = journey_simulate(tenant=tenant, journey=None, recipient_id="kim", definition=_journey(12),
                              events=[{"name": "signed_up", "at": t0, "payload": {"name": "kim"}}])
    assert [m["scheduled_for"] for m in result["messages"]] == [_hour(t0, 5).isoformat()]
    result = journey_simulate(tenant=tenant, journey=None, recipient_id="kim", definition=_journey(3),
                              events=[{"name": "signed_up", "at": t0, "payload": {"name": "kim"}}])
    assert [m.get("scheduled_for") for m in result["messages"]] == [None]  # +5 h is out of reach: now


@pytest.mark.parametrize("send_at, code", [
    ({"best_hour_within": 0}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_hour_within": 169}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_hour_within": "12"}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_hour_within": 1.5}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_hour_within": None}, "COMMS_SEND_TIME_WINDOW"),
    ({}, "COMMS_JOURNEY_INVALID"),
    ({"best_hour_within": 12, "at": "09:00"}, "COMMS_JOURNEY_INVALID"),
    ("best", "COMMS_JOURNEY_INVALID"),
])
def test_bad_windows_are_typed_errors_at_save(admin_api, promo, send_at, code):
    body = _journey(12)
    body["steps"]["hello"]["send_at"] = send_at
    response = admin_api.post("/api/v1/journeys", {"key": "j", "definition": body}, format="json")
    assert response.status_code == 400 and response.json()["code"] == code, response.json()
    assert response.json()["details"]["path"].startswith("$.steps.hello")  # a wrong type: the step (oneOf)


def test_valid_windows_pass():
    for n in (1, 24, 168):
        journey_validate(_journey(n))

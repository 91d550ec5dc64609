"""Segment entry through COPY (comms.router.journey_bulk): who enters, who is skipped, and that the
ordinary claim/advance takes the runs from there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms import errors
from comms.campaigns.models import Segment
from comms.router.journey_bulk import journey_enter_segment_copy
from comms.router.journeys import journey_enrol, journey_save, journey_set_status, journeys_advance
from comms.router.models import Journey, JourneyRun
from tests.comms.router_fixtures import person

pytestmark = pytest.mark.django_db

PROS = {"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}


def _definition(**extra) -> dict:
    return {"entry": {"segment": "pros"}, "start": "w",
            "steps": {"w": {"type": "wait", "seconds": 60, "next": "bye"}, "bye": {"type": "exit"}}, **extra}


@pytest.fixture
def pros(tenant):
    Segment.objects.create(tenant=tenant, name="pros", filter=PROS)
    people = {name: person(tenant, name, plan="pro") for name in ("ada", "bob", "cy", "dee")}
    person(tenant, "free-1", plan="free")
    return people


def test_segment_enters_every_member_once_on_the_active_version(tenant, pros):
    version, _ = journey_save(tenant=tenant, key="onboard", definition=_definition())
    journey = version.journey
    now = timezone.now()
    journey_enrol(journey=journey, recipient_id="ada", now=now)  # already live: skipped by the index

    stats = journey_enter_segment_copy(journey=journey, now=now, chunk=2)  # 2 per chunk: several COPYs
    assert (stats.audience, stats.created, stats.skipped, stats.chunks) == (4, 3, 1, 2)
    runs = JourneyRun.objects.filter(journey=journey)
    assert sorted(r.recipient.external_id for r in runs) == ["ada", "bob", "cy", "dee"]
    for run in runs.exclude(recipient=pros["ada"]):
        assert (run.state, run.step, run.version_id, run.seq) == ("active", "w", version.pk, 0)
        assert run.next_due_at == now and run.context == {"entry": {}, "source": "segment:pros"}
    # repeating the entry is harmless: everyone is live
    assert journey_enter_segment_copy(journey=journey, now=now).created == 0
    assert runs.count() == 4

    # the ordinary advance picks the copied runs up: each enters its wait
    assert journeys_advance(now=now, limit=100).advanced == 4
    assert set(runs.values_list("state", flat=True)) == {"waiting"}


def test_reentry_once_skips_anyone_who_ran_before(tenant, pros):
    journey = journey_save(tenant=tenant, key="once", definition=_definition(reentry={"policy": "once"}))[0].journey
    now = timezone.now()
    journey_enrol(journey=journey, recipient_id="bob", now=now - timedelta(days=30))
    JourneyRun.objects.filter(recipient=pros["bob"]).update(state="completed", exited_at=now)
    stats = journey_enter_segment_copy(journey=journey, now=now)
    assert (stats.created, stats.skipped) == (3, 1)
    assert JourneyRun.objects.filter(recipient=pros["bob"]).count() == 1


def test_reentry_after_days_counts_from_the_last_entry(tenant, pros):
    journey = journey_save(tenant=tenant, key="after",
                           definition=_definition(reentry={"policy": "after", "days": 7}))[0].journey
    now = timezone.now()
    for name, days_ago in (("bob", 3), ("cy", 10)):
        run = journey_enrol(journey=journey, recipient_id=name, now=now - timedelta(days=days_ago))
        JourneyRun.objects.filter(pk=run.pk).update(state="exited", exited_at=now)
    stats = journey_enter_segment_copy(journey=journey, now=now)
    assert stats.created == 3  # ada, dee, and cy (10 days ago); not bob (3 days ago)
    live = JourneyRun.objects.filter(journey=journey, state="active")
    assert sorted(live.values_list("recipient__external_id", flat=True)) == ["ada", "cy", "dee"]


def test_a_paused_journey_or_one_without_a_segment_refuses(tenant, pros):
    journey = journey_save(tenant=tenant, key="p", definition=_definition())[0].journey
    journey_set_status(journey=journey, status=Journey.Status.PAUSED)
    with pytest.raises(errors.JourneyState):
        journey_enter_segment_copy(journey=journey)
    by_event = {**_definition(), "entry": {"event": "user.signed_up"}}
    other = journey_save(tenant=tenant, key="e", definition=by_event)[0].journey
    with pytest.raises(errors.JourneyState):
        journey_enter_segment_copy(journey=other)
    assert JourneyRun.objects.count() == 0
    with pytest.raises(errors.AudienceInvalid):  # an explicit segment that does not exist
        journey_enter_segment_copy(journey=other, segment="nobody")

"""Versions, pause/resume/archive and run migration, with 10,000 runs waiting while the journey changes."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.models import Recipient
from comms.router.journeys import journey_save
from comms.router.models import Journey, JourneyRun
from tests.comms.journey_fixtures import advance, ingest, journey_templates, run_of, shopper

pytestmark = pytest.mark.django_db

V1 = {"entry": {"api": True}, "start": "w",
      "steps": {"w": {"type": "wait", "seconds": 86400, "next": "old"}, "old": {"type": "exit", "name": "v1 path"}}}
V2 = {"entry": {"api": True}, "start": "w",
      "steps": {"w": {"type": "wait", "seconds": 86400, "next": "fresh"}, "fresh": {"type": "exit", "name": "v2 path"}}}
N = 10_000


def test_edit_while_ten_thousand_runs_wait(tenant, admin_api, api):
    version, _ = journey_save(tenant=tenant, key="drip", definition=V1)
    people = Recipient.objects.bulk_create(Recipient(tenant=tenant, external_id=f"r{i}") for i in range(N))
    t0 = timezone.now()
    JourneyRun.objects.bulk_create(
        (JourneyRun(tenant=tenant, journey=version.journey, version=version, recipient=p, step="w", state="waiting",
                    next_due_at=t0 + timedelta(days=1), entered_at=t0, context={"entry": {}}) for p in people),
        batch_size=5000)

    edited = admin_api.put("/api/v1/journeys/drip", {"definition": V2, "notes": "new exit"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["active_version"] == 2
    assert JourneyRun.objects.filter(version__version=1, state="waiting").count() == N  # untouched
    shopper(tenant, "late")
    enrolled = api.post("/api/v1/journeys/drip/enrol", {"recipient": "late"}, format="json")
    assert enrolled.status_code == 201 and enrolled.json()["version"] == 2

    assert advance(timezone.now()).advanced == 1  # the new run starts its wait (due after t0 + 1 day)
    due = t0 + timedelta(days=1)
    assert advance(due, limit=4000).advanced == 4000  # these finish on version 1
    migrated = admin_api.post("/api/v1/journeys/drip/migrate-runs", {}, format="json").json()
    assert migrated == {"moved": N - 4000, "kept": 0, "to_version": 2}
    advance(due + timedelta(days=1), limit=N + 10)
    reasons = Counter(JourneyRun.objects.values_list("version__version", "exit_reason"))
    assert reasons == {(1, "v1 path"): 4000, (2, "v2 path"): N - 4000 + 1}
    stats = admin_api.get("/api/v1/journeys/drip/stats?version=1").json()
    assert stats["runs"]["exited"] == 4000
    assert {s["step"]: s["outcomes"] for s in stats["steps"]}["old"] == {"exited": 4000}


def test_pause_holds_timers_and_resume_continues(tenant, admin_api):
    journey_templates(tenant)
    journey_save(tenant=tenant, key="drip", definition=V1)
    ada = shopper(tenant, "ada")
    admin_api.post("/api/v1/journeys/drip/enrol", {"recipient": "ada"}, format="json")
    t0 = timezone.now()
    advance(t0)
    assert admin_api.post("/api/v1/journeys/drip/pause").json()["status"] == "paused"
    assert advance(t0 + timedelta(days=3)).claimed == 0  # due, but held
    run = run_of(ada)
    assert run.state == "waiting" and run.next_due_at == t0 + timedelta(days=1)  # timer kept as it was
    refused = admin_api.post("/api/v1/journeys/drip/enrol", {"recipient": "ada"}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "COMMS_JOURNEY_STATE"
    assert admin_api.post("/api/v1/journeys/drip/resume").json()["status"] == "active"
    assert advance(t0 + timedelta(days=3)).advanced == 1
    assert run_of(ada).exit_reason == "v1 path"


def test_archive_stops_entries_but_runs_finish(tenant, admin_api):
    definition = {**V1, "entry": {"event": "user.signed_up"}}
    journey_save(tenant=tenant, key="drip", definition=definition)
    shopper(tenant, "ada")
    bob = shopper(tenant, "bob")
    t0 = timezone.now()
    ingest(tenant, "user.signed_up", ["bob"], {}, t0)
    advance(t0)
    assert admin_api.post("/api/v1/journeys/drip/archive").json()["status"] == "archived"
    ingest(tenant, "user.signed_up", ["ada"], {}, t0)
    assert JourneyRun.objects.filter(recipient__external_id="ada").count() == 0
    advance(t0 + timedelta(days=1))
    assert run_of(bob).exit_reason == "v1 path"
    resumed = admin_api.post("/api/v1/journeys/drip/resume")
    assert resumed.status_code == 409 and resumed.json()["code"] == "COMMS_JOURNEY_STATE"
    assert Journey.objects.get().status == "archived"

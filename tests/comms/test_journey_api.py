"""The journeys API's reads and the segment entry, and the admin's journey pages answering."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from comms.campaigns.segments import segment_save
from comms.router.models import JourneyRun
from tests.comms.journey_fixtures import advance, shopper

pytestmark = pytest.mark.django_db

DRIP = {"entry": {"segment": "pros"}, "start": "w",
        "steps": {"w": {"type": "wait", "seconds": 3600, "next": "e"}, "e": {"type": "exit"}}}


def test_segment_entry_and_reads(tenant, admin_api, api):
    bad = admin_api.post("/api/v1/journeys", {"key": "drip", "definition": DRIP}, format="json")
    assert bad.status_code == 400 and bad.json()["details"]["path"] == "$.entry.segment"
    segment_save(tenant=tenant, name="pros", spec={"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]})
    for name, plan in (("ann", "pro"), ("ben", "pro"), ("cat", "free")):
        shopper(tenant, name, plan=plan)
    created = admin_api.post("/api/v1/journeys", {"key": "drip", "name": "Pro drip", "definition": DRIP},
                             format="json")
    assert created.status_code == 201 and created.json()["active_version"] == 1
    assert api.post("/api/v1/journeys/drip/enrol", {"recipient": "ann"}, format="json").status_code == 201
    entered = admin_api.post("/api/v1/journeys/drip/enrol-segment")
    assert entered.status_code == 202 and entered.json() == {"entered": 1}  # ann is already in it
    assert sorted(JourneyRun.objects.values_list("recipient__external_id", flat=True)) == ["ann", "ben"]
    advance(timezone.now())

    listed = api.get("/api/v1/journeys").json()["results"]
    assert [(j["key"], j["name"], j["status"]) for j in listed] == [("drip", "Pro drip", "active")]
    runs = api.get("/api/v1/journeys/drip/runs?state=waiting&limit=1").json()
    assert len(runs["results"]) == 1 and runs["results"][0]["step"] == "w"
    assert api.get("/api/v1/journeys/drip/runs?recipient=ben").json()["results"][0]["recipient"] == "ben"
    assert api.get("/api/v1/journeys/drip/versions/1").json()["definition"] == DRIP
    assert api.get("/api/v1/journeys/drip/versions/9").json()["code"] == "COMMS_NOT_FOUND"
    stats = api.get("/api/v1/journeys/drip/stats").json()
    assert stats["runs"]["waiting"] == 2 and stats["steps"][0] == {
        "step": "w", "type": "wait", "entered": 2, "waiting": 2, "outcomes": {"waiting": 2}}
    assert api.get("/api/v1/journeys/drip/stats?version=x").status_code == 404
    assert api.put("/api/v1/journeys/drip", {"definition": DRIP}, format="json").json()["code"] == "COMMS_FORBIDDEN"
    same = admin_api.put("/api/v1/journeys/drip", {"definition": DRIP}, format="json").json()
    assert same["active_version"] == 1  # unchanged definition: no new version
    unknown = admin_api.post("/api/v1/journeys", {"key": "x", "definition": DRIP, "colour": 1}, format="json")
    assert unknown.json()["code"] == "COMMS_UNKNOWN_FIELD"
    bad_key = admin_api.post("/api/v1/journeys", {"key": "a b", "definition": DRIP}, format="json")
    assert bad_key.status_code == 400 and bad_key.json()["code"] == "COMMS_JOURNEY_INVALID"


def test_admin_pages_show_journeys_and_runs(tenant, client):
    segment_save(tenant=tenant, name="pros", spec={"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]})
    from comms.router.journeys import journey_enrol, journey_save

    version, _ = journey_save(tenant=tenant, key="drip", definition=DRIP)
    shopper(tenant, "ann", plan="pro")
    run = journey_enrol(journey=version.journey, recipient_id="ann")
    advance(timezone.now())
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    for url in ("/admin/router/journey/", f"/admin/router/journey/{version.journey.pk}/change/",
                "/admin/router/journeyversion/", "/admin/router/journeyrun/",
                f"/admin/router/journeyrun/{run.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(f"/admin/router/journeyrun/{run.pk}/change/").content.decode()
    assert "waiting" in page and "drip" in page
    client.post("/admin/router/journey/", {"action": "pause", "_selected_action": [version.journey.pk]})
    version.journey.refresh_from_db()
    assert version.journey.status == "paused"

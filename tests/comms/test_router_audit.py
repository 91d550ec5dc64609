"""Every campaign, segment, schedule and routing-rule change writes exactly one AuditEntry naming the
action, the object and the actor (the API key, or the signed-in admin user)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from comms.models import AuditEntry
from comms.campaigns.models import Campaign, Segment
from comms.router.models import Schedule
from comms.campaigns.services import campaigns_tick
from comms.models import ApiKey
from comms.router.models import RoutingRule, RoutingRuleVersion
from tests.comms.router_fixtures import booking_templates, person

pytestmark = pytest.mark.django_db
FILTER = {"all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}
STEP = {"template": "booking_confirmed", "channels": ["email"]}


class Trail:
    """Asserts that one call wrote one audit row, and which."""

    def __init__(self, actor_label: str, user=None):
        self.actor_label, self.user = actor_label, user

    def one(self, action: str, call):
        before = set(AuditEntry.objects.values_list("pk", flat=True))
        result = call()
        new = list(AuditEntry.objects.exclude(pk__in=before))
        page = getattr(result, "content", b"").decode()
        problems = re.findall(r"errors field-([a-z_]+)", page) + re.findall(r'errorlist[^>]*>(.*?)</ul>', page)
        problems += [getattr(result, "status_code", None)]
        assert [e.action for e in new] == [action], (action, problems)
        entry = new[0]
        assert entry.actor_label == self.actor_label and entry.actor == self.user
        assert entry.tenant_id is not None and entry.ip == "127.0.0.1"
        return entry, result

    @staticmethod
    def target(entry: AuditEntry, obj) -> None:
        assert (entry.target_type, entry.target_id) == (obj._meta.label_lower, str(obj.pk))


@pytest.fixture
def world(tenant):
    booking_templates(tenant)
    for name in ("ann", "ben"):
        person(tenant, name, plan="pro")


def test_api_actions_are_audited_with_the_key_as_actor(admin_api, tenant, world):
    trail = Trail(f"api-key:{ApiKey.objects.get().prefix}")
    post, put = (lambda *a: admin_api.post(*a, format="json")), (lambda *a: admin_api.put(*a, format="json"))

    entry, response = trail.one("segment.create", lambda: post("/api/v1/segments", {"name": "pro", "filter": FILTER}))
    trail.target(entry, Segment.objects.get(name="pro"))
    entry, response = trail.one("segment.update", lambda: post("/api/v1/segments", {"name": "pro", "filter": {
        "any": FILTER["all"]}}))
    assert response.status_code == 200 and entry.diff["before"]["filter"] == FILTER

    body = {"name": "Spring", "channels": ["email"], "template": "booking_confirmed",
            "variables": {"booking_id": "B1"}, "audience": {"segment": "pro"}}
    entry, response = trail.one("campaign.create", lambda: post("/api/v1/campaigns", body))
    campaign = Campaign.objects.get()
    trail.target(entry, campaign)
    entry, response = trail.one("campaign.update", lambda: put(f"/api/v1/campaigns/{campaign.pk}", {
        **body, "name": "Spring sale", "throttle_per_minute": 60}))
    assert response.json()["name"] == "Spring sale" and response.json()["throttle_per_minute"] == 60
    for action in ("schedule", "pause", "resume", "cancel"):
        entry, response = trail.one(f"campaign.{action}", lambda: post(f"/api/v1/campaigns/{campaign.pk}/{action}"))
        assert response.status_code == 200, response.json()
        trail.target(entry, campaign)
        if action == "schedule":
            campaigns_tick()  # running, so pause has something to pause
    refused = AuditEntry.objects.count()
    assert post(f"/api/v1/campaigns/{campaign.pk}/resume").status_code == 409
    assert put(f"/api/v1/campaigns/{campaign.pk}", body).json()["code"] == "COMMS_CAMPAIGN_STATE"
    assert AuditEntry.objects.count() == refused  # a refused action leaves no row

    in_use = admin_api.delete("/api/v1/segments/pro")
    assert in_use.status_code == 409 and in_use.json()["code"] == "COMMS_SEGMENT_IN_USE"
    Campaign.objects.all().delete()
    segment = Segment.objects.get()
    entry, response = trail.one("segment.delete", lambda: admin_api.delete("/api/v1/segments/pro"))
    assert response.status_code == 204 and entry.target_id == str(segment.pk) and not Segment.objects.exists()

    event = {"name": "digest.weekly", "recipients": ["ann"], "payload": {"booking_id": "B1"}}
    entry, response = trail.one("schedule.create", lambda: post("/api/v1/schedules", {
        "name": "weekly", "cron": "0 9 * * 1", "timezone": "Europe/Berlin", "event": event}))
    schedule = Schedule.objects.get()
    trail.target(entry, schedule)
    entry, response = trail.one("schedule.update", lambda: admin_api.patch(
        f"/api/v1/schedules/{schedule.pk}", {"cron": "30 8 * * 1-5"}, format="json"))
    assert response.json()["cron"] == "30 8 * * 1-5"
    assert entry.diff == {"cron": {"before": "0 9 * * 1", "after": "30 8 * * 1-5"}}
    bad = admin_api.patch(f"/api/v1/schedules/{schedule.pk}", {"cron": "61 * * * *"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_CRON_INVALID"
    entry, response = trail.one("schedule.cancel", lambda: admin_api.delete(f"/api/v1/schedules/{schedule.pk}"))
    trail.target(entry, schedule)
    assert admin_api.patch(f"/api/v1/schedules/{schedule.pk}", {"name": "x"}, format="json").status_code == 409

    entry, response = trail.one("routing_rule.create", lambda: put("/api/v1/rules/booking.confirmed", {
        "definition": {"steps": [STEP]}, "notes": "first"}))
    first = RoutingRuleVersion.objects.get(version=1)
    trail.target(entry, first)
    entry, response = trail.one("routing_rule.version", lambda: put("/api/v1/rules/booking.confirmed", {
        "definition": {"steps": [{**STEP, "delay_seconds": 60}]}}))
    assert entry.diff["version"] == 2
    same = AuditEntry.objects.count()
    put("/api/v1/rules/booking.confirmed", {"definition": {"steps": [{**STEP, "delay_seconds": 60}]}})
    assert AuditEntry.objects.count() == same  # an unchanged definition adds no version and no row
    entry, response = trail.one("routing_rule.activate", lambda: post("/api/v1/rules/booking.confirmed/activate",
                                                                      {"version": 1}))
    trail.target(entry, first)
    assert response.json()["active_version"] == 1 and entry.diff["previous"] == 2
    missing = post("/api/v1/rules/booking.confirmed/activate", {"version": 9})
    assert missing.status_code == 404


def test_admin_actions_are_audited_with_the_user_as_actor(client, tenant, world):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-secret-pw")
    client.force_login(user)
    trail = Trail("boss", user)

    entry, _ = trail.one("segment.create", lambda: client.post("/admin/campaigns/segment/add/", {
        "tenant": tenant.pk, "name": "pro", "description": "", "filter": '{"all": [{"field": "attributes.plan", '
                                                                         '"op": "eq", "value": "pro"}]}'}))
    segment = Segment.objects.get()
    trail.target(entry, segment)
    form = {"tenant": tenant.pk, "name": "Spring", "channels": ["email"], "template": "booking_confirmed",
            "variables": '{"booking_id": "B1"}', "category": "marketing", "priority": "3", "audience_kind": "segment",
            "segment": segment.pk, "schedule_kind": "now", "recipients": "", "csv": ""}
    entry, _ = trail.one("campaign.create", lambda: client.post("/admin/campaigns/campaign/add/", form))
    campaign = Campaign.objects.get()
    trail.target(entry, campaign)
    entry, _ = trail.one("campaign.update", lambda: client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", {
        **form, "name": "Spring sale", "throttle_per_minute": "100"}))
    campaign.refresh_from_db()
    assert (campaign.name, campaign.throttle_per_minute) == ("Spring sale", 100)
    entry, _ = trail.one("campaign.schedule", lambda: client.post("/admin/campaigns/campaign/", {
        "action": "campaign_scheduled", "_selected_action": [campaign.pk]}))
    trail.target(entry, campaign)
    entry, _ = trail.one("campaign.cancel", lambda: client.post("/admin/campaigns/campaign/", {
        "action": "campaign_cancelled", "_selected_action": [campaign.pk]}))
    trail.target(entry, campaign)

    event = '{"name": "digest.weekly", "recipients": ["ann"]}'
    entry, _ = trail.one("schedule.create", lambda: client.post("/admin/router/schedule/add/", {
        "tenant": tenant.pk, "name": "weekly", "cron": "0 9 * * 1", "timezone": "UTC", "event": event}))
    schedule = Schedule.objects.get()
    assert schedule.kind == "cron" and schedule.next_run_at is not None
    trail.target(entry, schedule)
    entry, _ = trail.one("schedule.cancel", lambda: client.post("/admin/router/schedule/", {
        "action": "cancel", "_selected_action": [schedule.pk]}))

    entry, _ = trail.one("routing_rule.create", lambda: client.post("/admin/router/routingrule/add/", {
        "tenant": tenant.pk, "event_name": "booking.confirmed", "description": "",
        "definition": '{"steps": [{"template": "booking_confirmed", "channels": ["email"]}]}', "notes": "",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"}))
    rule = RoutingRule.objects.get()
    trail.target(entry, rule.active_version)
    change = {"tenant": tenant.pk, "event_name": "booking.confirmed", "description": "", "notes": "",
              "definition": '{"steps": [{"template": "booking_confirmed", "channels": ["email"], "delay_seconds": 5}]}',
              "versions-TOTAL_FORMS": "1", "versions-INITIAL_FORMS": "1", "versions-0-id": "",
              "versions-0-rule": rule.pk}
    version_one = rule.versions.get()
    change["versions-0-id"] = version_one.pk
    entry, _ = trail.one("routing_rule.version", lambda: client.post(
        f"/admin/router/routingrule/{rule.pk}/change/", change))
    change.update({"versions-TOTAL_FORMS": "2", "versions-INITIAL_FORMS": "2", "versions-1-rule": rule.pk,
                   "versions-0-id": rule.versions.get(version=2).pk, "versions-1-id": version_one.pk,
                   "activate_version": "1"})
    entry, _ = trail.one("routing_rule.activate", lambda: client.post(
        f"/admin/router/routingrule/{rule.pk}/change/", change))
    trail.target(entry, version_one)
    rule.refresh_from_db()
    assert rule.active_version == version_one and rule.versions.count() == 2

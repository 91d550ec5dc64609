"""Campaigns on push (directory audiences: recipients with an enabled device) end to end into the FCM
stand-in; webhook campaigns refused at create with a typed error; bad audiences refused at create."""

from __future__ import annotations

import pytest
from django.utils import timezone

from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.models import Campaign
from comms.campaigns.services import campaigns_tick
from comms.models import Device, Recipient
from delivery.models import Message
from delivery.services import drain_all
from tests.comms.router_fixtures import live_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def app_news(tenant):
    return live_template(tenant, "app_news", subject="News for {{name}}", body_html="<p>News</p>",
                         schema={"type": "object", "properties": {"name": {"type": "string"}}},
                         sample={"name": "x"}, category="marketing", channels=["push", "email"],
                         push=("News for {{name}}", "Open the app, {{name}}"))


@pytest.fixture
def directory(tenant):
    """Four people on the pro plan: two with devices (one of them also a disabled one), one whose only
    device is disabled, one without any."""
    people = {ext: Recipient.objects.create(tenant=tenant, external_id=ext, email=f"{ext}@example.com",
                                            attributes={"plan": "pro"}) for ext in ("ann", "ben", "cid", "dot")}
    for ext, token, disabled in (("ann", "ann-phone-token-01", False), ("ann", "ann-tablet-token-02", False),
                                 ("ben", "ben-phone-token-03", False), ("ben", "ben-old-token-00004", True),
                                 ("cid", "cid-dead-token-0005", True)):
        Device.objects.create(tenant=tenant, recipient=people[ext], token=token, platform="android",
                              disabled_at=timezone.now() if disabled else None)
    return people


def _create(admin_api, **body):
    # 'operational' (service updates): push is on by default there; marketing push is opt-in
    data = {"name": "App news", "channels": ["push"], "template": "app_news", "variables": {"name": "friend"},
            "category": "operational", "audience": {"segment": "pro"}, **body}
    return admin_api.post("/api/v1/campaigns", data, format="json")


def test_push_campaign_to_a_segment_reaches_every_enabled_device(admin_api, tenant, app_news, directory, fcm):
    assert admin_api.post("/api/v1/segments", {"name": "pro", "filter": {
        "all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}}, format="json").status_code == 201
    created = _create(admin_api)
    assert created.status_code == 201, created.json()
    assert created.json()["audience"]["size"] == 2  # ann and ben; cid's only device is disabled, dot has none
    cid = created.json()["id"]
    assert admin_api.post(f"/api/v1/campaigns/{cid}/schedule").status_code == 200
    campaigns_tick()  # what the schedule call's on-commit hook does (test transactions never commit)
    stats = campaign_fanout(campaign_id=cid)
    assert (stats.rows, stats.stopped) == (2, "")
    assert drain_all().sent == 2
    sent = fcm.by_token()
    assert set(sent) == {"ann-phone-token-01", "ann-tablet-token-02", "ben-phone-token-03"}
    for [wire] in sent.values():
        assert wire["notification"] == {"title": "News for friend", "body": "Open the app, friend"}
    rows = Message.objects.order_by("recipient_address")
    assert [(m.recipient_address, m.status, m.provider) for m in rows] == [("ann", "sent", "fcm"),
                                                                            ("ben", "sent", "fcm")]
    campaigns_tick()
    detail = admin_api.get(f"/api/v1/campaigns/{cid}").json()
    assert detail["state"] == "completed" and detail["progress"]["sent"] == 2
    assert detail["metrics"]["sent"] == 2


def test_push_without_a_provider_is_refused_at_schedule(admin_api, tenant, app_news, directory):
    created = _create(admin_api, audience={"recipients": ["ann"]})
    refused = admin_api.post(f"/api/v1/campaigns/{created.json()['id']}/schedule")
    assert refused.status_code == 422 and refused.json()["code"] == "COMMS_CHANNEL_UNAVAILABLE"
    assert Campaign.objects.get().state == "draft"


def test_push_and_email_campaign_counts_who_is_reachable_on_either(admin_api, tenant, app_news, directory, fcm):
    Recipient.objects.filter(external_id="dot").update(email="")
    both = _create(admin_api, channels=["push", "email"], audience={"recipients": ["ann", "cid", "dot", "ghost"]})
    assert both.status_code == 201 and both.json()["audience"]["size"] == 2  # ann (both), cid (email)
    assert admin_api.post(f"/api/v1/campaigns/{both.json()['id']}/schedule").json()["state"] == "scheduled"
    campaigns_tick()
    campaign_fanout(campaign_id=both.json()["id"])
    got = sorted(Message.objects.values_list("channel", "recipient_address"))
    assert got == [("email", "ann@example.com"), ("email", "cid@example.com"), ("push", "ann")]


def test_webhook_and_unreachable_audiences_are_refused_at_create(admin_api, tenant, app_news, directory):
    webhook = _create(admin_api, channels=["webhook"], audience={"recipients": ["ann"]})
    assert webhook.status_code == 422 and webhook.json()["code"] == "COMMS_CAMPAIGN_CHANNEL"
    assert "POST /messages/bulk" in webhook.json()["message"]
    csv_webhook = _create(admin_api, channels=["webhook"], audience={"csv": "to\nhttps://hooks.example.com/x\n"})
    assert csv_webhook.json()["code"] == "COMMS_CAMPAIGN_CHANNEL"
    nobody = _create(admin_api, audience={"recipients": ["cid", "dot"]})  # no enabled device between them
    assert nobody.status_code == 422 and nobody.json()["code"] == "COMMS_AUDIENCE_EMPTY"
    csv = _create(admin_api, audience={"csv": "recipient_id,name\nann,Ann\ndot,Dot\nghost,Gus\n"})
    assert csv.status_code == 201, csv.json()
    assert [(r["line"], r["code"]) for r in csv.json()["audience"]["refused_rows"]] == [
        (3, "COMMS_NO_DEVICES"), (4, "COMMS_RECIPIENT_NOT_FOUND")]
    assert csv.json()["audience"]["size"] == 1
    missing = _create(admin_api, template="nope", audience={"recipients": ["ann"]})
    assert missing.status_code == 422 and missing.json()["code"] == "COMMS_TEMPLATE_NOT_FOUND"
    sms = _create(admin_api, channels=["sms"], audience={"recipients": ["ann"]})
    assert sms.status_code == 422 and sms.json()["code"] == "COMMS_TEMPLATE_CHANNEL"
    past = _create(admin_api, audience={"recipients": ["ann"]}, schedule={"at": "2020-01-01T00:00:00Z"})
    assert past.status_code == 400 and past.json()["code"] == "COMMS_SCHEDULE_IN_PAST"
    assert not Campaign.objects.exclude(name="App news", audience_kind="csv").exists()

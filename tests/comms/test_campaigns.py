"""Campaigns: audiences, throttle, pause/resume/cancel, local-time scheduling, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from comms.campaigns.models import Campaign, Segment
from comms.campaigns.services import (
    campaign_cancel, campaign_create, campaign_pause, campaign_progress, campaign_resume,
    campaign_schedule, campaigns_tick,
)
from comms.campaigns.fanout import campaign_cleanup, campaign_fanout
from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from tests.comms.router_fixtures import live_template

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc


@pytest.fixture
def promo(tenant):
    return live_template(tenant, "promo", subject="Hello {{name}}", body_html="<p>Sale for {{name}}</p>",
                         schema={"type": "object", "properties": {"name": {"type": "string"}}},
                         sample={"name": "x"}, category="marketing")


def people(tenant, n: int, **attributes) -> list[Recipient]:
    return Recipient.objects.bulk_create([
        Recipient(tenant=tenant, external_id=f"u{i}", email=f"u{i}@example.com", attributes=attributes)
        for i in range(n)])


def _campaign(tenant, **extra) -> Campaign:
    data = {"name": "Winter sale", "channels": ["email"], "template": "promo", "variables": {"name": "friend"},
            "audience": {"recipients": [f"u{i}" for i in range(30)]}, **extra}
    return campaign_create(tenant=tenant, data=data)


def _started(tenant, t0, **extra) -> Campaign:
    campaign = _campaign(tenant, **extra)
    campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
    assert campaigns_tick(now=t0).started == 1
    return campaign


def test_throttle_releases_chunks_per_minute_and_pause_resume_holds_them(tenant, promo, smtp_sink):
    people(tenant, 30)
    t0 = timezone.now()
    campaign = _started(tenant, t0, throttle_per_minute=10)
    stats = campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
    assert (stats.chunks, stats.rows) == (3, 30)
    assert [b.send_at - t0 for b in campaign.batches.order_by("seq")] == [
        timedelta(0), timedelta(minutes=1), timedelta(minutes=2)]
    assert Message.objects.filter(status="queued").count() == 10  # the first slot; the rest is held
    assert drain_all().sent == 10
    assert drain_all(clock=lambda: t0 + timedelta(hours=5)).sent == 0  # held rows are never promoted
    progress = campaign_progress(campaign)
    assert (progress["sent"], progress["waiting"], progress["total"]) == (10, 20, 30)

    assert campaigns_tick(now=t0 + timedelta(seconds=61)).released == 1
    campaign_pause(tenant=tenant, campaign_id=campaign.id, now=t0 + timedelta(seconds=62))  # before any send
    assert drain_all(clock=lambda: t0 + timedelta(hours=5)).claimed == 0
    assert campaigns_tick(now=t0 + timedelta(hours=1)).released == 0

    resumed = t0 + timedelta(minutes=10)
    campaign_resume(tenant=tenant, campaign_id=campaign.id, now=resumed)
    shifted = [b.send_at - resumed for b in campaign.batches.order_by("seq")][1:]
    assert shifted == [timedelta(seconds=-2), timedelta(seconds=58)]  # spacing kept, moved by the pause
    assert drain_all(clock=lambda: resumed).sent == 10
    campaigns_tick(now=resumed + timedelta(minutes=1))
    assert drain_all(clock=lambda: resumed + timedelta(minutes=1)).sent == 10
    campaigns_tick(now=resumed + timedelta(minutes=2))
    campaign.refresh_from_db()
    assert campaign.state == "completed"
    assert len(smtp_sink.messages) == 30


def test_cancel_stops_released_and_held_rows(tenant, promo, smtp_sink):
    people(tenant, 30)
    t0 = timezone.now()
    campaign = _started(tenant, t0, throttle_per_minute=10)
    campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
    drain_all()
    campaigns_tick(now=t0 + timedelta(seconds=61))  # second chunk released, not yet sent
    campaign, effect = campaign_cancel(tenant=tenant, campaign_id=campaign.id, now=t0 + timedelta(seconds=62))
    assert effect == {"cancelled": 10, "in_flight": 0, "held_cancelled_in_background": 10}
    assert drain_all(clock=lambda: t0 + timedelta(hours=1)).claimed == 0
    assert campaigns_tick(now=t0 + timedelta(hours=1)).released == 0
    assert campaign_cleanup(campaign_id=campaign.id) == 10
    assert Message.objects.filter(status="cancelled").count() == 20
    with pytest.raises(Exception) as exc:
        campaign_resume(tenant=tenant, campaign_id=campaign.id)
    assert exc.value.code == "COMMS_CAMPAIGN_STATE"


def test_local_time_in_each_recipients_timezone(tenant, promo):
    for ext, tz in (("tokyo", "Asia/Tokyo"), ("berlin", "Europe/Berlin"), ("ny", "America/New_York")):
        Recipient.objects.create(tenant=tenant, external_id=ext, email=f"{ext}@example.com", timezone=tz)
    now = datetime(2026, 6, 29, 12, 0, tzinfo=UTC)
    for day, expected in (("2026-07-01", {"tokyo": "2026-07-01T00:00", "berlin": "2026-07-01T07:00",
                                          "ny": "2026-07-01T13:00"}),       # summer time in Berlin and New York
                          ("2026-12-01", {"tokyo": "2026-12-01T00:00", "berlin": "2026-12-01T08:00",
                                          "ny": "2026-12-01T14:00"})):
        Message.objects.all().delete()
        Campaign.objects.update(state="cancelled")
        campaign = campaign_create(tenant=tenant, now=now, data={
            "name": f"Local {day}", "channels": ["email"], "template": "promo",
            "audience": {"recipients": ["tokyo", "berlin", "ny"]},
            "schedule": {"local_date": day, "local_time": "09:00"}})
        campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=now)
        campaigns_tick(now=now)
        campaign_fanout(campaign_id=campaign.id, now_fn=lambda: now)
        got = {b.send_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for b in campaign.batches.all()}
        assert got == set(expected.values())
        assert set(Message.objects.values_list("status", flat=True)) == {"scheduled"}  # held until due
        assert campaigns_tick(now=datetime.fromisoformat(expected["berlin"] + "+00:00")).released == 2
        assert sorted(Message.objects.filter(status="queued").values_list("recipient__external_id", flat=True)) == [
            "berlin", "tokyo"]


def test_segment_csv_and_bad_input(admin_api, tenant, promo):
    people(tenant, 5, plan="pro")
    Recipient.objects.create(tenant=tenant, external_id="free1", email="f@example.com", attributes={"plan": "free"})
    seg = admin_api.post("/api/v1/segments", {"name": "pro-users", "filter": {
        "all": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}}, format="json")
    assert seg.status_code == 201 and seg.json()["size"] == 5
    bad_seg = admin_api.post("/api/v1/segments", {"name": "x", "filter": {"all": [{"field": "x", "op": "zz"}]}},
                             format="json")
    assert bad_seg.status_code == 400 and bad_seg.json()["code"] == "COMMS_AUDIENCE_INVALID"

    created = admin_api.post("/api/v1/campaigns", {"name": "Pro", "channels": ["email"], "template": "promo",
                                                    "audience": {"segment": "pro-users"}}, format="json")
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    scheduled = admin_api.post(f"/api/v1/campaigns/{cid}/schedule")
    assert scheduled.status_code == 200 and scheduled.json()["audience"]["size"] == 5
    assert admin_api.post(f"/api/v1/campaigns/{cid}/schedule").json()["code"] == "COMMS_CAMPAIGN_STATE"
    campaigns_tick()  # what the schedule call's on-commit hook does (test transactions never commit)
    campaign_fanout(campaign_id=cid)
    detail = admin_api.get(f"/api/v1/campaigns/{cid}").json()
    assert detail["progress"]["queued"] == 5 and detail["state"] == "running"

    csv_text = "recipient_id,to,name\nu0,,Ann\n,not-an-email,Bob\nghost,,Cy\n,z@example.com,Zed\n,,Nobody\n"
    csv = admin_api.post("/api/v1/campaigns", {"name": "CSV", "channels": ["email"], "template": "promo",
                                                "audience": {"csv": csv_text}}, format="json")
    assert csv.status_code == 201, csv.json()
    refused = csv.json()["audience"]["refused_rows"]
    assert [(r["line"], r["code"]) for r in refused] == [
        (3, "COMMS_INVALID_ADDRESS"), (4, "COMMS_RECIPIENT_NOT_FOUND"), (6, "COMMS_INVALID_ADDRESS")]
    all_bad = admin_api.post("/api/v1/campaigns", {"name": "CSV", "channels": ["email"], "template": "promo",
                                                    "audience": {"csv": "to\nnope\n"}}, format="json")
    assert all_bad.status_code == 422 and all_bad.json()["code"] == "COMMS_AUDIENCE_EMPTY"

    Segment.objects.create(tenant=tenant, name="nobody", filter={"all": [{"field": "locale", "op": "eq",
                                                                          "value": "xx"}]})
    empty = admin_api.post("/api/v1/campaigns", {"name": "Empty", "channels": ["email"], "template": "promo",
                                                  "audience": {"segment": "nobody"}}, format="json")
    assert empty.status_code == 422 and empty.json()["code"] == "COMMS_AUDIENCE_EMPTY"
    # a segment that empties between create and schedule is refused at schedule
    Recipient.objects.create(tenant=tenant, external_id="xx1", email="xx@example.com", locale="xx")
    later = admin_api.post("/api/v1/campaigns", {"name": "Later", "channels": ["email"], "template": "promo",
                                                  "audience": {"segment": "nobody"}}, format="json")
    assert later.status_code == 201 and later.json()["audience"]["size"] == 1
    Recipient.objects.filter(external_id="xx1").delete()
    zero = admin_api.post(f"/api/v1/campaigns/{later.json()['id']}/schedule")
    assert zero.status_code == 422 and zero.json()["code"] == "COMMS_AUDIENCE_EMPTY"

"""Campaigns: audiences, throttle, pause/resume/cancel, local-time scheduling, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from comms.campaign_models import Campaign, Segment
from comms.campaigns import (
    campaign_cancel, campaign_create, campaign_fanout, campaign_pause, campaign_progress, campaign_resume,
    campaign_schedule, campaigns_tick,
)
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


def test_throttle_spreads_chunks_and_pause_resume_holds_them(tenant, promo, smtp_sink):
    people(tenant, 30)
    t0 = timezone.now()
    campaign = _campaign(tenant, throttle_per_minute=10)
    campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
    assert campaigns_tick(now=t0).started == 1
    stats = campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
    assert (stats.chunks, stats.rows) == (3, 30)
    slots = sorted({m.next_attempt_at - t0 for m in Message.objects.all()})
    assert slots == [timedelta(0), timedelta(minutes=1), timedelta(minutes=2)]
    assert drain_all().sent == 10  # only the first minute's chunk is due
    campaign.refresh_from_db()
    progress = campaign_progress(campaign)
    assert (progress["sent"], progress["waiting"], progress["total"]) == (10, 20, 30)

    paused_at = t0 + timedelta(seconds=30)
    campaign_pause(tenant=tenant, campaign_id=campaign.id, now=paused_at)
    from delivery.services import waiting_promote

    assert waiting_promote(now=t0 + timedelta(hours=5)) == 0  # held rows are never promoted
    assert drain_all(clock=lambda: t0 + timedelta(hours=5)).sent == 0

    resumed_at = t0 + timedelta(minutes=10)
    campaign_resume(tenant=tenant, campaign_id=campaign.id, now=resumed_at)
    due = sorted({m.next_attempt_at - resumed_at for m in Message.objects.filter(status="scheduled")})
    assert due == [timedelta(seconds=30), timedelta(seconds=90)]  # spacing kept, shifted by the pause
    waiting_promote(now=resumed_at + timedelta(minutes=2))
    assert drain_all(clock=lambda: resumed_at + timedelta(minutes=2)).sent == 20
    campaigns_tick(now=resumed_at + timedelta(minutes=3))
    campaign.refresh_from_db()
    assert campaign.state == "completed"
    assert len(smtp_sink.messages) == 30


def test_cancel_cancels_every_unsent_row_at_once(tenant, promo, smtp_sink):
    people(tenant, 30)
    t0 = timezone.now()
    campaign = _campaign(tenant, throttle_per_minute=10)
    campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
    campaigns_tick(now=t0)
    campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
    drain_all()
    campaign, effect = campaign_cancel(tenant=tenant, campaign_id=campaign.id, now=t0 + timedelta(seconds=5))
    assert effect == {"cancelled": 20, "in_flight": 0}
    assert drain_all(clock=lambda: t0 + timedelta(hours=1)).claimed == 0
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
        campaign = campaign_create(tenant=tenant, now=now, data={
            "name": f"Local {day}", "channels": ["email"], "template": "promo",
            "audience": {"recipients": ["tokyo", "berlin", "ny"]},
            "schedule": {"local_date": day, "local_time": "09:00"}})
        campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=now)
        campaigns_tick(now=now)
        campaign_fanout(campaign_id=campaign.id, now_fn=lambda: now)
        got = {m.recipient.external_id: m.scheduled_for.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
               for m in Message.objects.select_related("recipient")}
        assert got == expected
        assert set(Message.objects.values_list("status", flat=True)) == {"scheduled"}


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
                                                  "audience": {"segment": "nobody"}}, format="json").json()
    zero = admin_api.post(f"/api/v1/campaigns/{empty['id']}/schedule")
    assert zero.status_code == 422 and zero.json()["code"] == "COMMS_AUDIENCE_EMPTY"

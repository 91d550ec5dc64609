"""Best-hour campaigns end to end: engagement history ingested as a provider reports it, the fan-out
plans each recipient's hour (no history: the population's peak; quiet hours skipped), the rows wait
held until their hour and the worker sends them then, into the SMTP sink."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comms.campaigns.abtest import SEQ_REST
from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.models import Campaign
from comms.campaigns.services import campaign_create, campaign_schedule, campaigns_tick
from comms.models import Recipient
from delivery.models import ChannelProvider, Message
from delivery.services import HOLD_UNTIL, drain_all
from preferences.models import QuietHours
from templates_app.models import TemplateVersion
from tests.comms.router_fixtures import live_template
from tests.comms.send_time_fixtures import opened_at, weekly
from tracking.normalised import NormalisedEvent
from tracking.services.events import Outcome, event_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def promo(tenant):
    return live_template(tenant, "promo", subject="Hello {{name}}", body_html="<p>Sale for {{name}}</p>",
                         schema={"type": "object", "properties": {"name": {"type": "string"}}},
                         sample={"name": "x"}, category="marketing", channels=["email"])


def _people(tenant, *names: str) -> dict[str, Recipient]:
    return {n: Recipient.objects.create(tenant=tenant, external_id=n, email=f"{n}@example.com") for n in names}


def _hour(t0: datetime, k: int) -> datetime:
    """The start of the k-th whole hour after t0 (what the model offers as a send time)."""
    return t0.replace(minute=0, second=0, microsecond=0) + timedelta(hours=k)


def _start(tenant, t0: datetime, audience: list[str], **schedule) -> Campaign:
    campaign = campaign_create(tenant=tenant, now=t0, data={
        "name": "Best hour", "channels": ["email"], "template": "promo", "variables": {"name": "friend"},
        "audience": {"recipients": audience}, "schedule": {"best_within_hours": 24, **schedule}})
    campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
    assert campaigns_tick(now=t0).started == 1
    return campaign


def test_each_recipient_is_sent_at_their_best_hour(admin_api, tenant, promo, smtp_sink):
    t0 = timezone.now().replace(minute=30, second=0, microsecond=0)
    people = _people(tenant, "early", "late", "fresh", "crowd", "quiet")
    # early opens 3 h after t0's hour each week, late 10 h after, quiet too (but is quiet then);
    # crowd opens most, at +15 h, so +15 h is the population's peak; fresh has no history at all.
    opened_at(admin_api, {people["early"]: weekly(_hour(t0, 3) + timedelta(minutes=5), 3),
                          people["late"]: weekly(_hour(t0, 10) + timedelta(minutes=5), 4),
                          people["quiet"]: weekly(_hour(t0, 10) + timedelta(minutes=5), 6),
                          people["crowd"]: weekly(_hour(t0, 15) + timedelta(minutes=5), 12)})
    history = len(smtp_sink.messages)
    quiet_from = _hour(t0, 10).time()
    QuietHours.objects.create(tenant=tenant, recipient=people["quiet"], start=quiet_from,
                              end=time((quiet_from.hour + 1) % 24), channels=["email"])
    campaign = _start(tenant, t0, list(people))
    stats = campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
    assert stats.rows == 5
    expected = {"early": _hour(t0, 3), "late": _hour(t0, 10), "crowd": _hour(t0, 15), "fresh": _hour(t0, 15),
                # its own hour is quiet: the neighbouring hours carry half its habit; the earlier one wins the tie
                "quiet": _hour(t0, 9)}
    mine = Message.objects.filter(batch_id__in=campaign.batches.values("batch_id"))
    planned = {}
    for batch in campaign.batches.all():
        for ext in Message.objects.filter(batch_id=batch.batch_id).values_list("recipient__external_id", flat=True):
            planned[ext] = batch.send_at
    assert planned == expected
    assert set(mine.values_list("scheduled_for", flat=True)) == {HOLD_UNTIL}  # held until their hour
    assert campaign_representation_kind(admin_api, campaign) == ("best", 24)

    for at in sorted(set(expected.values())):
        due = {ext for ext, when in expected.items() if when == at}
        assert drain_all(clock=lambda: at - timedelta(minutes=1)).sent == 0  # nothing goes before its hour
        campaigns_tick(now=at)
        rows = mine.filter(recipient__external_id__in=due)
        assert set(rows.values_list("scheduled_for", flat=True)) == {at}
        assert drain_all(clock=lambda: at).sent == len(due)
        assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert len(smtp_sink.messages) == history + 5
    campaigns_tick(now=_hour(t0, 16))
    campaign.refresh_from_db()
    assert campaign.state == "completed"


def campaign_representation_kind(admin_api, campaign) -> tuple[str, int]:
    schedule = admin_api.get(f"/api/v1/campaigns/{campaign.id}").json()["schedule"]
    return schedule["kind"], schedule["best_within_hours"]


def test_no_history_anywhere_sends_at_the_start_and_sms_default_quiet_hours_apply(tenant, promo):
    t0 = datetime(2026, 12, 7, 22, 30, tzinfo=dt_timezone.utc)  # 22:30 UTC: inside SMS's default 21:00–08:00
    live_template(tenant, "nudge", subject="", body_html="", sms="Sale {{name}}", category="marketing",
                  channels=["sms"], schema={"type": "object", "properties": {"name": {"type": "string"}}},
                  sample={"name": "x"})
    ChannelProvider.objects.create(tenant=tenant, channel="sms", name="twilio",  # nothing is sent here
                                   provider_class="delivery.providers.twilio.TwilioProvider",
                                   options={"from_number": "+15005550009"})
    Recipient.objects.create(tenant=tenant, external_id="m", email="m@example.com", phone="+14155550100")
    Recipient.objects.create(tenant=tenant, external_id="e", email="e@example.com")
    for channel, template, ext, expected in (("email", "promo", "e", t0), ("sms", "nudge", "m", _hour(t0, 10))):
        campaign = campaign_create(tenant=tenant, now=t0, data={
            "name": channel, "channels": [channel], "template": template, "variables": {"name": "x"},
            "audience": {"recipients": [ext]}, "schedule": {"best_within_hours": 24}})
        campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
        campaigns_tick(now=t0)
        campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
        # no engagement in the tenant: every hour scores the same and the earliest allowed one wins
        # (email: the start itself, released at once; SMS: 08:00 UTC, the end of the default quiet hours)
        assert [b.send_at for b in campaign.batches.all()] == [expected]


def test_profiles_are_read_per_chunk_not_per_recipient(admin_api, tenant, promo, settings):
    t0 = timezone.now()
    settings.COMMS_CAMPAIGN_CHUNK = 20
    Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"u{i}", email=f"u{i}@example.com")
                                   for i in range(60)])
    campaign = _start(tenant, t0, [f"u{i}" for i in range(60)])
    with CaptureQueriesContext(connection) as queries:
        campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0, writers=1)
    history = [q for q in queries.captured_queries if "tracking_messageevent" in q["sql"]]
    assert len(history) == 1 + 3  # the population once, then one read per chunk of 20


def test_ab_sample_and_winner_use_best_hours(tenant, promo, admin_api, smtp_sink):
    TemplateVersion.objects.filter(template=promo).update(experiment={"name": "s", "variants": [
        {"key": "A", "weight": 50, "subject": "A"}, {"key": "B", "weight": 50, "subject": "B"}]})
    t0 = timezone.now().replace(minute=30, second=0, microsecond=0)
    people = _people(tenant, *[f"p{i}" for i in range(40)])
    opened_at(admin_api, {p: weekly(_hour(t0, 13) + timedelta(minutes=5), 2) for p in people.values()})
    campaign = campaign_create(tenant=tenant, now=t0, data={
        "name": "AB best", "channels": ["email"], "template": "promo", "variables": {"name": "x"},
        "audience": {"recipients": list(people)}, "schedule": {"best_within_hours": 24},
        "ab_test": {"sample_percent": 20, "wait_hours": 6, "min_sample": 1}})
    campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
    campaigns_tick(now=t0)
    campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0)
    sample = campaign.batches.filter(seq__lt=SEQ_REST)
    rest = campaign.batches.filter(seq__gte=SEQ_REST)
    assert sample.exists() and rest.exists()
    # the sample's window is half the wait (3 h): everyone's +13 h is out of reach; the population is the
    # same people, so every hour in reach scores alike and the start goes
    assert {b.send_at for b in sample} == {t0}
    assert drain_all(clock=lambda: t0).sent == Message.objects.filter(batch_id__in=sample.values("batch_id")).count()
    # the rest is planned from the decision (t0 + 6 h) over 24 h: +13 h is in reach; held without a slot
    assert {(b.send_at, b.best_at) for b in rest} == {(None, _hour(t0, 13))}
    decided = t0 + timedelta(hours=6, minutes=1)
    campaigns_tick(now=decided)
    assert {b.send_at for b in rest.all()} == {_hour(t0, 13)}  # the winner goes at the planned hour
    assert campaigns_tick(now=decided).released == 0
    campaigns_tick(now=_hour(t0, 13))
    assert drain_all(clock=lambda: _hour(t0, 13)).sent == Message.objects.filter(
        batch_id__in=rest.values("batch_id")).count()


@pytest.mark.parametrize("schedule, code", [
    ({"best_within_hours": 0}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_within_hours": 169}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_within_hours": "24"}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_within_hours": 2.5}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_within_hours": True}, "COMMS_SEND_TIME_WINDOW"),
    ({"kind": "best"}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_within_hours": None}, "COMMS_SEND_TIME_WINDOW"),
    ({"best_within_hours": 24, "local_time": "09:00"}, "COMMS_VALIDATION_ERROR"),
    ({"kind": "soon"}, "COMMS_VALIDATION_ERROR"),
    ({"best_within_hours": 24, "at": "2001-01-01T00:00:00Z"}, "COMMS_SCHEDULE_IN_PAST"),
])
def test_bad_best_hour_schedules_are_typed_errors(admin_api, tenant, promo, schedule, code):
    Recipient.objects.create(tenant=tenant, external_id="u0", email="u0@example.com")
    response = admin_api.post("/api/v1/campaigns", {
        "name": "x", "channels": ["email"], "template": "promo", "variables": {"name": "x"},
        "audience": {"recipients": ["u0"]}, "schedule": schedule}, format="json")
    assert response.status_code == 400 and response.json()["code"] == code, response.json()
    assert not Campaign.objects.exists()
    assert response.json()["message"]


def test_api_round_trip_and_start_from_a_given_time(admin_api, tenant, promo):
    Recipient.objects.create(tenant=tenant, external_id="u0", email="u0@example.com")
    at = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    response = admin_api.post("/api/v1/campaigns", {
        "name": "x", "channels": ["email"], "template": "promo", "variables": {"name": "x"},
        "audience": {"recipients": ["u0"]}, "schedule": {"best_within_hours": 48, "at": at.isoformat()}},
        format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["schedule"]["kind"] == "best" and body["schedule"]["best_within_hours"] == 48
    cid = body["id"]
    again = admin_api.put(f"/api/v1/campaigns/{cid}", {
        "name": "x", "channels": ["email"], "template": "promo", "variables": {"name": "x"},
        "audience": {"recipients": ["u0"]}, "schedule": body["schedule"]}, format="json")
    assert again.status_code == 200, again.json()  # the returned shape is accepted back
    assert admin_api.post(f"/api/v1/campaigns/{cid}/schedule").status_code == 200
    assert Campaign.objects.get(pk=cid).start_at == at


def test_a_resumed_fan_out_plans_the_same_hours_and_writes_nothing_twice(admin_api, tenant, promo, settings, smtp_sink):
    settings.COMMS_CAMPAIGN_CHUNK = 2
    t0 = timezone.now().replace(minute=30, second=0, microsecond=0)
    people = _people(tenant, *[f"p{i}" for i in range(6)])
    opened_at(admin_api, {people[f"p{i}"]: weekly(_hour(t0, 2 + i % 3), 2) for i in range(6)})
    campaign = _start(tenant, t0, list(people))
    first = campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0, writers=1)
    assert first.rows == 6 and campaign.batches.count() == 3  # three hours, two people each
    # an open that arrives after the start does not move anybody: history is read up to the start
    late = Message.objects.filter(recipient=people["p0"], sent_at__isnull=False).get()
    for n in range(5):  # enough to move p0 to +6 h if it were read
        assert event_ingest(event=NormalisedEvent(provider="mailgun", event_type="opened", event_id=f"late-{n}",
                                                  message_id=str(late.id), timestamp=t0 + timedelta(minutes=n))
                            ) == Outcome.APPLIED
    Campaign.objects.filter(pk=campaign.pk).update(fanout_done=False)  # as if the task died before the end
    again = campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0 + timedelta(minutes=20), writers=1)
    assert (again.rows, again.skipped) == (0, 3) and campaign.batches.count() == 3
    assert Message.objects.filter(batch_id__in=campaign.batches.values("batch_id")).count() == 6

"""Engagement scores from real sends and events, the segment filter on them, and the router's
"best channel first" option."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms import errors
from comms.campaigns.segments import filter_validate, segment_queryset
from comms.router.journeys import journey_save
from delivery.models import InAppNotification, Message
from delivery.services import drain_all
from tracking.models import EventType, MessageEvent, RecipientEngagement
from tracking.scores import engagement_refresh
from tests.comms.journey_fixtures import advance, ingest, run_of
from tests.comms.router_fixtures import booking_templates, person, rule

pytestmark = pytest.mark.django_db


def _send(api, who: str, channel: str, n: int, tag: str) -> list[Message]:
    for i in range(n):
        response = api.post("/api/v1/events", {"name": f"ping.{channel}", "recipients": [who], "cause_ref": f"{tag}-{i}",
                                               "payload": {"booking_id": f"B{i}", "status": "ok"}}, format="json")
        assert response.status_code == 202, response.json()
    drain_all()
    return list(Message.objects.filter(recipient__external_id=who, channel=channel, metadata__cause_ref__startswith=tag))


def _engage(messages: list[Message], when) -> None:
    for m in messages:
        MessageEvent.objects.create(tenant_id=m.tenant_id, message=m, event_type=EventType.CLICKED, provider="comms",
                                    recipient_address=m.recipient_address, timestamp=when)


@pytest.fixture
def history(api, tenant, smtp_sink):
    """active: engages on email today; lapsed: engaged two months ago, nothing since; cold: never;
    inbox: ignores email, reads every in-app item."""
    booking_templates(tenant)
    for name in ("active", "lapsed", "cold", "inbox"):
        person(tenant, name)
    rule(tenant, "ping.email", {"template": "booking_confirmed", "channels": ["email"]})
    rule(tenant, "ping.in_app", {"template": "booking_confirmed", "channels": ["in_app"]})
    now = timezone.now()
    _engage(_send(api, "active", "email", 4, "a")[:3], now - timedelta(hours=2))
    lapsed = _send(api, "lapsed", "email", 6, "l")
    Message.objects.filter(pk__in=[m.pk for m in lapsed]).update(sent_at=now - timedelta(days=70))
    _engage(lapsed[:4], now - timedelta(days=69))
    _send(api, "cold", "email", 6, "c")
    _send(api, "inbox", "email", 4, "ie")
    read = _send(api, "inbox", "in_app", 3, "ii")
    InAppNotification.objects.filter(message__in=read).update(read_at=now - timedelta(hours=1))
    assert engagement_refresh(tenant_id=tenant.id) == 4
    return {r.recipient_id: r for r in RecipientEngagement.objects.all()}


def _row(tenant, name: str) -> RecipientEngagement:
    return RecipientEngagement.objects.get(recipient_id=tenant.recipients.get(external_id=name).pk)


def test_scores_order_recipients_by_recency_and_frequency(tenant, history):
    score = {n: _row(tenant, n).score for n in ("active", "lapsed", "cold")}
    assert score["active"] > 0.7 > score["lapsed"] > score["cold"]
    assert score["cold"] < 0.1
    reeng = {n: _row(tenant, n).reengagement for n in ("active", "lapsed", "cold")}
    assert reeng["lapsed"] > 0.5 and reeng["lapsed"] > reeng["active"] and reeng["cold"] == 0
    assert _row(tenant, "active").best_channel == "email" and _row(tenant, "cold").best_channel == ""
    assert _row(tenant, "inbox").best_channel == "in_app"
    assert _row(tenant, "inbox").channels["email"] == {"sent": 4, "engaged": 0, "rate": pytest.approx(0.0667, abs=1e-3)}


def test_segment_filter_on_engagement_score(tenant, history):
    person(tenant, "newcomer")  # never sent anything: scores 0
    low = segment_queryset(tenant=tenant, spec={"all": [{"field": "engagement_score", "op": "lt", "value": 0.2}]})
    assert set(low.values_list("external_id", flat=True)) == {"cold", "newcomer"}
    high = segment_queryset(tenant=tenant, spec={"all": [{"field": "engagement_score", "op": "gte", "value": 0.5}]})
    assert set(high.values_list("external_id", flat=True)) == {"active", "inbox"}
    win_back = segment_queryset(tenant=tenant, spec={"all": [{"field": "reengagement_score", "op": "gt", "value": 0.3},
                                                             {"field": "email", "op": "exists"}]})
    assert list(win_back.values_list("external_id", flat=True)) == ["lapsed"]


@pytest.mark.parametrize("cond", [
    {"field": "engagement_score", "op": "lt", "value": "low"},
    {"field": "engagement_score", "op": "lt", "value": 1.5},
    {"field": "engagement_score", "op": "lt", "value": True},
    {"field": "engagement_score", "op": "contains", "value": 0.2},
    {"field": "engagement_score", "op": "lt"},
])
def test_bad_score_conditions_are_typed_errors(cond):
    with pytest.raises(errors.AudienceInvalid):
        filter_validate({"all": [cond]})


def test_segment_api_refuses_a_bad_score_value(admin_api):
    response = admin_api.post("/api/v1/segments", {"name": "low", "filter": {"all": [
        {"field": "engagement_score", "op": "lt", "value": "x"}]}}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "COMMS_AUDIENCE_INVALID"


def test_best_channel_first_puts_the_engaged_channel_first(api, tenant, history):
    step = {"template": "booking_confirmed", "channels": ["email", "in_app"]}

    def first_channel(extra: dict) -> str:
        response = api.post("/api/v1/events/dry-run", {"event": {"name": "x.y", "recipients": ["inbox", "active"],
                                                                "payload": {"booking_id": "B9", "status": "ok"}},
                                                      "definition": {"steps": [{**step, **extra}]}}, format="json")
        assert response.status_code == 200, response.json()
        return [p["channel"] for p in response.json()["plans"]]

    assert first_channel({}) == ["email", "email"]  # default unchanged
    assert first_channel({"channel_order": "as_listed"}) == ["email", "email"]
    assert first_channel({"channel_order": "best_first"}) == ["in_app", "email"]
    bad = api.post("/api/v1/events/dry-run", {"event": {"name": "x.y", "recipients": ["inbox"], "payload": {}},
                                              "definition": {"steps": [{**step, "channel_order": "random"}]}},
                   format="json")
    assert bad.status_code == 400 and bad.json()["code"].startswith("COMMS_")


def test_journey_branch_reads_the_engagement_score(tenant, history):
    journey_save(tenant=tenant, key="triage", definition={
        "entry": {"event": "check.in"}, "start": "b",
        "steps": {"b": {"type": "branch", "cases": [{"when": "recipient.engagement_score > 0.5", "next": "hot"}],
                        "default": "cold"},
                  "hot": {"type": "exit", "name": "engaged"}, "cold": {"type": "exit", "name": "not engaged"}}})
    now = timezone.now()
    ingest(tenant, "check.in", ["active", "cold"], {}, now)
    advance(now)
    assert run_of(tenant.recipients.get(external_id="active")).step == "hot"
    assert run_of(tenant.recipients.get(external_id="cold")).step == "cold"

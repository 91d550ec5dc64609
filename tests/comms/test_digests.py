"""Digests: windows and cadences with injected time, summary rendering, once under racing flushers,
empty digests, and recipients whose preference asks for daily digests."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection

from comms.router.digests import DigestSpec, digest_add, digests_flush, due_at
from comms.router.events import EventInput, event_ingest
from comms.router.models import Digest
from delivery.models import Message
from delivery.services import drain_all
from tests.comms.router_fixtures import booking_templates, person, rule

UTC = dt_timezone.utc
T0 = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # a Saturday; US daylight saving time starts the next day


def _event(tenant, cause: str, booking: str, now: datetime, name: str = "booking.updated"):
    return event_ingest(tenant=tenant, now=now, event=EventInput(
        name=name, recipients=("ada",), cause_ref=cause, category="booking",
        payload={"booking_id": booking, "status": "changed"}))


def test_cadence_points_are_local_wall_clock_times():
    spec = DigestSpec(key="k", template="t", cadence="daily", at="09:00")
    assert due_at(spec, tz="America/New_York", now=T0) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert due_at(spec, tz="America/New_York", now=T0 - timedelta(days=2)) == datetime(2026, 3, 6, 14, 0, tzinfo=UTC)
    weekly = DigestSpec(key="k", template="t", cadence="weekly", at="09:00", weekday=0)
    assert due_at(weekly, tz="Asia/Tokyo", now=T0) == datetime(2026, 3, 9, 0, 0, tzinfo=UTC)  # Monday 09:00 JST
    assert due_at(DigestSpec(key="k", template="t", cadence="hourly"), tz="UTC", now=T0 + timedelta(minutes=5)) == \
        T0 + timedelta(hours=1)
    assert due_at(DigestSpec(key="k", template="t", window_seconds=600), tz="UTC", now=T0) == T0 + timedelta(minutes=10)


@pytest.mark.django_db
def test_window_collects_events_and_sends_one_summary(tenant, smtp_sink):
    booking_templates(tenant)
    person(tenant, "ada")
    rule(tenant, "booking.updated", {"template": "booking_confirmed", "channels": ["email"],
                                     "digest": {"key": "BOOKINGS:{recipient.id}", "template": "booking_digest",
                                                "window_seconds": 3600}})
    for i, minute in enumerate((0, 10, 20)):
        event, _ = _event(tenant, f"c{i}", f"B{i}", T0 + timedelta(minutes=minute))
        assert event.outcome[0]["action"] == "digest"
    _event(tenant, "c0", "B0", T0 + timedelta(minutes=30))  # a replay adds nothing
    assert not Message.objects.exists()
    assert digests_flush(now=T0 + timedelta(minutes=59)).sent == 0
    assert digests_flush(now=T0 + timedelta(minutes=61)).sent == 1
    message = Message.objects.get()
    assert message.variables["count"] == 3 and message.subject == "3 booking updates"
    assert all(f"B{i}: changed" in message.body_html for i in range(3))
    assert digests_flush(now=T0 + timedelta(days=1)).sent == 0
    _event(tenant, "c9", "B9", T0 + timedelta(minutes=62))  # after the send: a new digest opens
    assert Digest.objects.filter(state="open").count() == 1
    assert drain_all().sent == 1 and len(smtp_sink.messages) == 1


@pytest.mark.django_db
def test_empty_digest_is_not_sent(tenant):
    booking_templates(tenant)
    ada = person(tenant, "ada")
    Digest.objects.create(tenant=tenant, recipient=ada, key="k", template_key="booking_digest", channels=["email"],
                          due_at=T0)
    stats = digests_flush(now=T0 + timedelta(seconds=1))
    assert (stats.sent, stats.empty) == (0, 1)
    assert not Message.objects.exists() and Digest.objects.get().state == "empty"


@pytest.mark.django_db(transaction=True)
def test_racing_flushers_send_a_digest_once(tenant):
    booking_templates(tenant)
    ada = person(tenant, "ada")
    spec = DigestSpec(key="race", template="booking_digest", window_seconds=60)
    for i in range(5):
        digest_add(tenant=tenant, recipient=ada, spec=spec, channels=["email"], category="booking", priority=3,
                   item_key=f"i{i}", data={"payload": {"booking_id": f"B{i}", "status": "x"}}, now=T0)
    barrier = threading.Barrier(4)
    results = []

    def flusher():
        try:
            barrier.wait()
            results.append(digests_flush(now=T0 + timedelta(minutes=2)).sent)
        finally:
            connection.close()

    threads = [threading.Thread(target=flusher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1
    assert Message.objects.count() == 1 and Message.objects.get().variables["count"] == 5


@pytest.mark.django_db
def test_recipients_on_daily_digest_get_digests_automatically(tenant, smtp_sink):
    from preferences.services import preferences_update

    booking_templates(tenant)
    from django.conf import settings

    settings.COMMS_DIGEST_TEMPLATE = "booking_digest"
    ada = person(tenant, "ada", tz="Europe/Berlin")
    person(tenant, "bob")
    preferences_update(recipient=ada, changes=[{"category": "booking", "channel": "email", "enabled": True,
                                                "frequency": "daily_digest"}], updated_by="user", source="test")
    rule(tenant, "booking.updated", {"template": "booking_confirmed", "channels": ["email"]})
    event = event_ingest(tenant=tenant, now=T0, event=EventInput(
        name="booking.updated", recipients=("ada", "bob"), cause_ref="e1", category="booking",
        payload={"booking_id": "B1", "status": "changed"}))[0]
    ada_plan, bob_plan = event.outcome
    assert (ada_plan["action"], ada_plan["decision"]) == ("digest", "digest")
    assert bob_plan["action"] == "send"
    digest = Digest.objects.get()
    assert digest.key == "pref:booking:daily" and digest.due_at == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    assert digests_flush(now=datetime(2026, 3, 8, 8, 0, 1, tzinfo=UTC)).sent == 1
    assert drain_all().sent == 2  # bob's message, and ada's digest (not collected again at send time)
    assert sorted(m["To"] for m in smtp_sink.messages) == ["ada@example.com", "bob@example.com"]

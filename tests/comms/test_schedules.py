"""Stored schedules: cron in a timezone, one-time sends, firing once, cancellation, bad cron."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from comms.router.models import Schedule
from comms.router.models import Event
from comms.router.schedules import cron_next, schedule_create, schedules_run
from delivery.models import Message
from tests.comms.router_fixtures import booking_templates, person, rule

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc
T0 = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)  # a Friday
EVENT = {"name": "booking.reminder", "recipients": ["ada"], "payload": {"booking_id": "B1", "status": "soon"}}


@pytest.fixture
def setup(tenant):
    booking_templates(tenant)
    person(tenant, "ada")
    rule(tenant, "booking.reminder", {"template": "booking_confirmed", "channels": ["email"]})
    return tenant


def test_cron_reads_wall_clock_time_in_its_timezone():
    # Mondays 09:00 in New York: 14:00Z in winter, 13:00Z once daylight saving time started (Mar 8).
    assert cron_next("0 9 * * 1", "America/New_York", T0 - timedelta(days=7)) == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert cron_next("0 9 * * 1", "America/New_York", T0) == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_recurring_schedule_fires_once_per_occurrence(admin_api, setup):
    schedule = schedule_create(tenant=setup, name="weekly", event=EVENT, cron="0 9 * * 1", tz="Europe/Berlin", now=T0)
    assert schedule.next_run_at == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    assert schedules_run(now=datetime(2026, 3, 9, 7, 59, tzinfo=UTC)).fired == 0
    first = datetime(2026, 3, 9, 8, 0, 30, tzinfo=UTC)
    assert schedules_run(now=first).fired == 1
    assert schedules_run(now=first).fired == 0  # the same tick again (a second beat): nothing
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 16, 8, 0, tzinfo=UTC) and schedule.run_count == 1
    # A firing repeated for the same occurrence (e.g. after a crash) produces its messages once.
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    schedules_run(now=first + timedelta(seconds=5))
    assert Event.objects.count() == 1 and Message.objects.count() == 1
    assert Event.objects.get().cause_ref == f"schedule:{schedule.pk}:2026-03-09T08:00:00+00:00"

    cancelled = admin_api.delete(f"/api/v1/schedules/{schedule.pk}")
    assert cancelled.status_code == 200 and cancelled.json()["next_run_at"] is None
    assert schedules_run(now=datetime(2026, 3, 30, tzinfo=UTC)).fired == 0
    assert admin_api.delete(f"/api/v1/schedules/{schedule.pk}").json()["code"] == "COMMS_SCHEDULE_STATE"


def test_one_time_schedule_and_bad_input(admin_api, setup):
    run_at = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    created = admin_api.post("/api/v1/schedules", {"name": "once", "run_at": run_at.isoformat(), "event": EVENT},
                             format="json")
    assert created.status_code == 201 and created.json()["kind"] == "once"
    assert schedules_run(now=run_at).fired == 1
    assert Schedule.objects.get().next_run_at is None and Message.objects.count() == 1

    bad_cron = admin_api.post("/api/v1/schedules", {"cron": "61 * * * *", "event": EVENT}, format="json")
    assert bad_cron.status_code == 400 and bad_cron.json()["code"] == "COMMS_CRON_INVALID"
    six_fields = admin_api.post("/api/v1/schedules", {"cron": "0 0 9 * * 1", "event": EVENT}, format="json")
    assert six_fields.json()["code"] == "COMMS_CRON_INVALID"
    bad_zone = admin_api.post("/api/v1/schedules", {"cron": "0 9 * * *", "timezone": "Mars/Base", "event": EVENT},
                              format="json")
    assert bad_zone.json()["code"] == "COMMS_VALIDATION_ERROR"
    nobody = admin_api.post("/api/v1/schedules", {"cron": "0 9 * * *", "event": {"name": "booking.reminder"}},
                            format="json")
    assert nobody.status_code == 422 and nobody.json()["code"] == "COMMS_AUDIENCE_EMPTY"
    past = admin_api.post("/api/v1/schedules", {"run_at": "2020-01-01T00:00:00Z", "event": EVENT}, format="json")
    assert past.json()["code"] == "COMMS_SCHEDULE_IN_PAST"

"""Anomaly series fed by real sends (issue 22 item 5): failures per provider *and* error code from the
queue gauge, and the SMS spend per tenant and hour from the cost roll-up, both through the Twilio
stand-in; each raises an alert that names its dimensions, to the real ops alert hook."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from admin_console import stats
from admin_console.anomaly_feed import hour_points
from delivery.costs import prices
from delivery.costs.models import CostHourly
from delivery.costs.services import price_set
from delivery.models import Message
from delivery.services import SendSpec, drain_all, message_enqueue
from tracking.models import AnomalyAlert
from tracking.services.anomaly import Point, anomaly_observe

pytestmark = pytest.mark.django_db
ALERTS: list[dict] = []


def record_alert(*, kind: str, text: str, data: dict) -> None:
    """COMMS_OPS_ALERT for these tests: keep what was raised."""
    ALERTS.append({"kind": kind, "text": text, **data})


@pytest.fixture(autouse=True)
def _hook(settings):
    ALERTS.clear()
    prices.clear_cache()
    settings.COMMS_OPS_ALERT = f"{__name__}.record_alert"
    yield
    prices.clear_cache()


def _hour():
    """The next hour: the worker's clock then lies after every row's due time."""
    return timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _send(tenant, twilio, numbers: list[str], *, at, fail: bool) -> None:
    for to in numbers:
        if fail:  # Twilio's documented error for a bad 'To' (https://www.twilio.com/docs/api/errors/21211)
            twilio.failures[to] = [(400, 21211, "The 'To' number is not a valid phone number.")]
        message_enqueue(tenant=tenant, spec=SendSpec(channel="sms", to=to, body="hi"))
    drain_all(clock=lambda: at)


def test_failures_are_a_series_per_provider_and_error_code_and_alert_with_both(tenant, twilio,
                                                                             django_capture_on_commit_callbacks):
    hour = _hour()
    key = "failure_code:twilio:21211"
    # A week of hours without this failure (the gauge total stays 0), as the feed would have judged them.
    for t in range(170, 0, -1):
        anomaly_observe(hour=hour - timedelta(hours=t), points=[Point(key, "failure_code", 0.0, 0.0, cumulative=True)])
    for step in range(2):  # two hours of 25 rejected sends each: persistence 2 raises the alert
        at = hour + timedelta(hours=step, minutes=5)
        _send(tenant, twilio, [f"+1415555{step}{i:03d}" for i in range(25)], at=at, fail=True)
        points = {p.key: p for p in hour_points(hour=hour + timedelta(hours=step), now=at)}
        assert points[key].labels == {"provider": "twilio", "code": "21211"}
        assert points[key].value == 25 * (step + 1)  # the gauge's failed rows of twilio/21211 so far
        with django_capture_on_commit_callbacks(execute=True):  # the ops alert goes out on commit
            anomaly_observe(hour=hour + timedelta(hours=step), points=[points[key]])
    assert set(Message.objects.values_list("status", "provider", "failure_code")) == {("failed", "twilio", "21211")}
    alert = AnomalyAlert.objects.get(series=key)
    assert alert.observed == 25 and alert.evidence["labels"] == {"provider": "twilio", "code": "21211"}
    [sent] = [a for a in ALERTS if a["series"] == key]
    assert (sent["kind"], sent["provider"], sent["code"]) == ("anomaly.alert", "twilio", "21211")


def test_migration_0016_recounts_failed_rows_that_were_counted_without_a_provider(tenant, twilio):
    """Existing data: the gauge's failed rows predate the provider column. The migration's recount puts
    them under their provider, and a later change of such a row nets to zero (no negative count)."""
    _send(tenant, twilio, ["+14155550001", "+14155550002"], at=timezone.now() + timedelta(minutes=1), fail=True)
    stats.rollup()
    with connection.cursor() as cursor:  # as an older deployment had it
        cursor.execute("UPDATE admin_console_queuegauge SET provider = '' WHERE status = 'failed'")
        cursor.execute(importlib.import_module("admin_console.migrations.0016_queuegauge_provider").RECOUNT)
        cursor.execute("SELECT provider, reason, n FROM admin_console_queuegauge WHERE status = 'failed'")
        assert cursor.fetchall() == [("twilio", "21211", 2)]
    Message.objects.filter(recipient_address="+14155550001").delete()
    stats.rollup()
    with connection.cursor() as cursor:
        cursor.execute("SELECT provider, n FROM admin_console_queuegauge WHERE status = 'failed'")
        assert cursor.fetchall() == [("twilio", 1)]
    assert [(r.status, r.reason, r.n) for r in stats.queue_depth() if r.status == "failed"] == [("failed", "21211", 1)]


def test_sms_spend_per_hour_is_judged_against_its_hour_of_week_baseline(tenant, twilio,
                                                                       django_capture_on_commit_callbacks):
    price_set(tenant=None, provider="twilio", channel="sms", unit="segment", price="0.50", actor=None)
    hour = _hour()
    key = f"sms_spend:{tenant.id}:USD"
    for t in range(170, 0, -1):  # a week at about 1.00 an hour (two segments)
        anomaly_observe(hour=hour - timedelta(hours=t), points=[Point(key, "sms_spend", 1.0, 2.0)])
    _send(tenant, twilio, ["+14155550100", "+14155550101"], at=hour + timedelta(minutes=5), fail=False)
    [row] = CostHourly.objects.filter(tenant_id=tenant.id)
    assert (row.hour, row.units, row.messages, row.amount) == (hour, 2, 2, Decimal("1.00"))
    points = {p.key: p for p in hour_points(hour=hour, now=hour + timedelta(minutes=6))}
    assert (points[key].value, points[key].volume, points[key].tenant_id) == (1.0, 2.0, str(tenant.id))
    anomaly_observe(hour=hour, points=[points[key]])  # a normal hour: nothing
    assert not AnomalyAlert.objects.exists()
    for step in (1, 2):  # a leaked key: 20 x the usual spend for two hours
        at = hour + timedelta(hours=step, minutes=5)
        _send(tenant, twilio, [f"+1415556{step}{i:03d}" for i in range(40)], at=at, fail=False)
        with django_capture_on_commit_callbacks(execute=True):
            anomaly_observe(hour=hour + timedelta(hours=step),
                            points=[p for p in hour_points(hour=hour + timedelta(hours=step), now=at) if p.key == key])
    alert = AnomalyAlert.objects.get(series=key)
    assert (alert.kind, alert.observed, str(alert.tenant_id)) == ("sms_spend", 20.0, str(tenant.id))
    assert 1.0 <= alert.baseline < 2.0  # the first out hour taught the level at a quarter weight only
    [sent] = [a for a in ALERTS if a.get("series") == key]
    assert (sent["kind"], sent["tenant"], sent["currency"]) == ("cost.sms_spend_anomaly", str(tenant.id), "USD")
    # an hour without spend is a zero point of a known series, not a gap
    quiet = hour + timedelta(hours=5)
    assert [p.value for p in hour_points(hour=quiet, now=quiet) if p.key == key] == [0.0]

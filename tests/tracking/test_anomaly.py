"""Anomaly detection: the seasonal EWMA detector on synthetic series, the hourly service (state, alerts,
the ops alert hook reaching a real loopback webhook), and the feed reading the real aggregates."""

from __future__ import annotations

import json
import math
import random
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from django.utils import timezone as dj_timezone

from admin_console.anomaly_feed import anomaly_tick, hour_points
from delivery.services import drain_all
from tracking.anomaly import Params, State, hour_of_week, observe
from tracking.models import AnomalyAlert, AnomalySeries
from tracking.services.anomaly import Point, anomaly_observe

START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday


def _weekly(t: int, scale: float = 1000.0) -> float:
    day, hour = divmod(t % 168, 24)
    return scale * (0.15 + 0.85 * math.exp(-((hour - 13) ** 2) / 18.0)) * (0.4 if day >= 5 else 1.0)


def _noisy(rng: random.Random, lam: float) -> float:
    return max(0.0, round(rng.gauss(lam, math.sqrt(lam))))


def _replay(values: list[float], params: Params) -> list[int]:
    state = State()
    return [t for t, v in enumerate(values)
            if observe(state, value=v, volume=v, slot=hour_of_week(START + timedelta(hours=t)), params=params).fire]


def test_a_quiet_seasonal_series_raises_nothing():
    """Four weeks of a strong day/night and weekday/weekend shape with counting noise: no alarm."""
    rng = random.Random(7)
    values = [_noisy(rng, _weekly(t)) for t in range(4 * 168)]
    assert _replay(values, Params(direction="both")) == []


def test_an_injected_spike_is_detected_within_two_hours():
    rng = random.Random(7)
    start = 3 * 168 + 10
    values = [_noisy(rng, _weekly(t) * (3.0 if start <= t < start + 4 else 1.0)) for t in range(4 * 168)]
    fired = _replay(values, Params(direction="both"))
    assert fired == [start + 1]  # persistence 2: the second out hour raises it, once


def test_one_odd_hour_alone_does_not_alarm():
    rng = random.Random(7)
    spike = 3 * 168 + 10
    values = [_noisy(rng, _weekly(t) * (3.0 if t == spike else 1.0)) for t in range(4 * 168)]
    assert _replay(values, Params(direction="both")) == []


def test_a_failure_rate_jump_is_detected_and_a_thin_hour_is_not_judged():
    rng = random.Random(3)
    params = Params(is_rate=True, warmup=24, min_volume=50)
    state = State()
    fired = []
    for t in range(200):
        volume = 10.0 if t in (150, 151) else 500.0  # a thin hour: 5 of 10 failed means nothing
        p = 0.2 if t >= 180 else 0.01
        failed = sum(1 for _ in range(int(volume)) if rng.random() < p) if t not in (150, 151) else 5
        verdict = observe(state, value=failed / volume, volume=volume, slot=hour_of_week(START + timedelta(hours=t)),
                          params=params)
        if verdict.fire:
            fired.append(t)
    assert fired == [181]


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def alert_hook(settings):
    server = HTTPServer(("127.0.0.1", 0), type("Hook", (_Hook,), {"received": []}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.COMMS_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/"
    yield server.RequestHandlerClass.received
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_the_service_keeps_state_opens_one_alert_with_evidence_and_resolves_it(alert_hook):
    rng = random.Random(5)
    hours = [START + timedelta(hours=t) for t in range(60)]
    for t, hour in enumerate(hours):
        p = 0.3 if t in (50, 51, 52) else 0.01
        failed = sum(1 for _ in range(400) if rng.random() < p)
        anomaly_observe(hour=hour, points=[Point("failure_rate:twilio", "failure_rate", failed / 400, 400.0)])
        if t == 51:
            # a second tick in the same hour judges nothing again
            anomaly_observe(hour=hour, points=[Point("failure_rate:twilio", "failure_rate", 0.9, 400.0)])
    alert = AnomalyAlert.objects.get()
    assert alert.series == "failure_rate:twilio" and alert.hour == hours[51]
    assert alert.observed > 0.2 and alert.baseline < 0.05 and alert.z > 4 and alert.sigma > 0
    assert alert.evidence["points"][-1][0] == hours[51].isoformat()
    assert alert.resolved_at is not None  # hour 53 was back to normal
    assert AnomalySeries.objects.get(key="failure_rate:twilio").state["n"] >= 57
    assert [(m["type"], m["series"]) for m in alert_hook] == [("anomaly.alert", "failure_rate:twilio")]
    assert alert_hook[0]["baseline"] == pytest.approx(alert.baseline)


@pytest.mark.django_db
def test_cumulative_counters_are_judged_by_their_growth():
    hours = [START + timedelta(hours=t) for t in range(40)]
    sent = bounced = 0
    for t, hour in enumerate(hours):
        sent += 1000
        bounced += 200 if t in (30, 31) else 5
        anomaly_observe(hour=hour, points=[Point("bounce_rate:campaign:c1", "bounce_rate", bounced, sent,
                                                 cumulative=True)])
    alert = AnomalyAlert.objects.get()
    assert alert.hour == hours[31] and alert.observed == pytest.approx(0.2) and alert.volume == 1000


@pytest.mark.django_db
def test_the_feed_reads_the_real_aggregates():
    """The beat entry point runs against the real tables and records the queue-age series."""
    assert anomaly_tick() == 0
    keys = set(AnomalySeries.objects.values_list("key", flat=True))
    assert {f"queue_age:p{p}" for p in range(5)} <= keys


@pytest.mark.django_db
def test_the_feed_counts_real_sends_of_the_hour(api, smtp_sink):
    """Sends through the API and the worker land in the minute aggregate; the hour's points carry them."""
    for i in range(3):
        response = api.post("/api/v1/messages", {"channel": "email", "to": f"u{i}@example.com", "subject": "Hi",
                                                 "body": "Hello"}, format="json")
        assert response.status_code == 202, response.json()
    drain_all()
    now = dj_timezone.now()
    points = {p.key: p for p in hour_points(hour=now.replace(minute=0, second=0, microsecond=0), now=now)}
    assert points["send_rate:email"].value == 3
    provider = next(k for k in points if k.startswith("failure_rate:"))
    assert points[provider].value == 0 and points[provider].volume == 3

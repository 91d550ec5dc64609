"""The anomalies console page in headless Chromium at 1280 and 360 px: an alert raised by the real
service from an injected failure-rate incident shows with its evidence, nothing overflows sideways."""

from __future__ import annotations

import os
import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.admin_console.test_layout_e2e import OVERFLOW_JS
from tests.browser import SCREENSHOTS, browser_page
from comms.models import AuditEntry
from tracking.models import AnomalyAlert
from tracking.services.anomaly import Point, anomaly_observe

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _incidents() -> None:
    rng = random.Random(11)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=200)
    for t in range(200):
        hour = start + timedelta(hours=t)
        p = 0.25 if t >= 197 else 0.01
        failed = sum(1 for _ in range(300) if rng.random() < p)
        late = 900.0 if t in (180, 181) else 30.0 + rng.random() * 10  # resolved queue-age incident
        anomaly_observe(hour=hour, points=[Point("failure_rate:twilio", "failure_rate", failed / 300, 300.0),
                                           Point("queue_age:p2", "queue_age", late, late)])


def test_anomalies_page_lists_open_alerts_with_evidence(live_server):
    _incidents()
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    with browser_page() as page:
        page.goto(f"{live_server.url}/admin/login/?next=/console/anomalies/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector("#anomalies-open")
        row = page.locator("#anomalies-open tbody tr").inner_text()
        assert "failure_rate:twilio" in row
        observed, baseline = (float(page.locator(f"#anomalies-open td:nth-child({i})").inner_text()) for i in (3, 4))
        assert observed > 0.15 and baseline < 0.05
        assert page.locator("#anomalies-charts svg").count() == 1
        assert "queue_age:p2" in page.locator("#anomalies-resolved").inner_text()
        # acknowledge from the page (a plain form POST): the row then says who, and the audit log has it
        with page.expect_navigation():
            page.click("#anomalies-open tbody tr button")
        assert "ops" in page.locator("#anomalies-open tr.acknowledged").inner_text()
        assert page.locator("#anomalies-open button").count() == 0
        alert = AnomalyAlert.objects.get(series="failure_rate:twilio")
        assert alert.acknowledged_by == "ops" and AuditEntry.objects.filter(action="anomaly.acknowledge",
                                                                           target_id=str(alert.id)).exists()
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.reload()
            assert page.evaluate(OVERFLOW_JS) <= 0, f"overflows at {width}px"
            page.screenshot(path=str(SCREENSHOTS / f"anomalies-{width}.png"), full_page=True)

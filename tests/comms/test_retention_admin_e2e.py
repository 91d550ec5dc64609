"""Retention in the admin, in headless Chromium at 1280 and 360 px: the policies (with the typed error
for a setting below the minimum) and the last runs per kind, nothing overflowing sideways."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from comms.models import AuditEntry, RetentionPolicy, RetentionRun
from comms.services import tenant_get_default
from tests.admin_console.test_layout_e2e import OVERFLOW_JS
from tests.browser import SCREENSHOTS, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _shoot(page, name: str) -> None:
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        assert page.evaluate(OVERFLOW_JS) <= 0, f"{name} overflows at {width}px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


def test_policies_and_runs_in_the_admin(live_server):
    tenant = tenant_get_default()
    get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-secret-pw")
    now = timezone.now()
    RetentionRun.objects.create(kind="messages", started_at=now - timedelta(minutes=3), finished_at=now,
                                status="ok", removed=1_048_210, archived=1_048_210, batches=210,
                                children_removed={"delivery_deliverylog": 1_048_210})
    RetentionRun.objects.create(kind="webhooks", started_at=now, finished_at=now, status="failed",
                                error="COMMS_ARCHIVE_UNAVAILABLE: s3://archive/comms unreachable")
    base = live_server.url
    with browser_page() as page:
        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "ops-secret-pw")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        page.goto(f"{base}/admin/comms/retentionpolicy/add/")
        page.select_option("#id_tenant", str(tenant.pk))
        page.select_option("#id_kind", "messages")
        page.fill("#id_days", "3")
        page.click("input[name=_save]")
        assert "COMMS_RETENTION_BELOW_MINIMUM" in page.inner_text(".errorlist")
        assert not RetentionPolicy.objects.exists()
        page.fill("#id_days", "30")
        page.click("input[name=_save]")
        page.wait_for_selector("#result_list")
        assert RetentionPolicy.objects.get().days == 30
        assert AuditEntry.objects.filter(action="retention.policy_set", actor_label="ops").exists()
        assert "30" in page.inner_text("#result_list") and "90" in page.inner_text("#result_list")
        _shoot(page, "retention-policies")
        page.goto(f"{base}/admin/comms/retentionrun/")
        text = page.inner_text("#result_list")
        assert "1048210" in text.replace(",", "") and "COMMS_ARCHIVE_UNAVAILABLE" in text
        _shoot(page, "retention-runs")

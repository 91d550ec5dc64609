"""The dashboard's tenant quota section in headless Chromium (1280 and 360 px), and its Prometheus figures."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from comms import quotas
from comms.models import Tenant, TenantQuota
from tests.admin_console.test_layout_e2e import OVERFLOW_JS, TABLES_JS
from tests.browser import SCREENSHOTS, admin_login, admin_staff, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _usage(tenant, other_tenant, now):
    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 1000, "sms": 50}, api_requests_per_minute=600)
    TenantQuota.objects.create(tenant=other_tenant, max_bulk_size=500, weight=3)
    quotas.admit(tenant_id=tenant.id, channel="email", count=930, now=now)
    quotas.take_sends(tenant_id=tenant.id, channel="email", count=950, now=now)
    assert quotas.take_sends(tenant_id=tenant.id, channel="sms", count=60, now=now) == 50
    quotas.count_event(tenant.id, "deferred_daily", "sms", 10)
    quotas.count_event(other_tenant.id, "refused_bulk_size")


def test_the_dashboard_shows_each_tenants_quota_use(live_server, tenant, other_tenant):
    now = timezone.now()
    _usage(tenant, other_tenant, now)
    Tenant.objects.create(slug="no-quota", name="No quota")
    admin_staff("vera", "CommsViewer")
    with browser_page() as page:
        admin_login(page, live_server.url, "vera")
        page.goto(f"{live_server.url}/console/")
        rows = page.locator("#tenant-quotas tbody tr")
        texts = [rows.nth(i).inner_text().split("\t") for i in range(rows.count())]
        by = {(r[0], r[1]): r for r in texts}
        assert by[("default · default", "email")][2:8] == ["1000", "930", "950", "95.0%", "0", "0"]
        assert by[("default · default", "sms")][2:8] == ["50", "0", "50", "100.0%", "10", "0"]
        assert by[("other · default", "—")][7:] == ["1", "—", "500", "3"]
        assert not any(r[0].startswith("no-quota") for r in texts)  # tenants without limits stay out
        assert "alert" in (rows.nth(0).locator("td").nth(5).get_attribute("class") or "")
        page.locator("#tenant-quotas").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "quota-console-1280.png"))
        assert page.evaluate(OVERFLOW_JS) == 0 and page.evaluate(TABLES_JS) == []
        page.set_viewport_size({"width": 360, "height": 800})
        page.goto(f"{live_server.url}/console/?tenant={tenant.id}")
        assert page.locator("#tenant-quotas tbody tr").count() == 2  # the tenant filter applies
        page.locator("#tenant-quotas").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "quota-console-360.png"))
        assert page.evaluate(OVERFLOW_JS) == 0 and page.evaluate(TABLES_JS) == []


def test_metrics_carry_budgets_use_and_refusals(client, tenant, other_tenant):
    _usage(tenant, other_tenant, timezone.now())
    text = client.get("/metrics").content.decode()
    assert 'comms_tenant_quota_limit{channel="email",tenant="default"} 1000.0' in text
    assert 'comms_tenant_quota_used{channel="email",kind="sent",tenant="default"} 950.0' in text
    assert 'comms_tenant_quota_used{channel="email",kind="accepted",tenant="default"} 930.0' in text
    assert 'comms_tenant_quota_events_total{channel="sms",kind="deferred_daily",tenant="default"} 10.0' in text
    assert 'comms_tenant_quota_events_total{channel="",kind="refused_bulk_size",tenant="other"} 1.0' in text

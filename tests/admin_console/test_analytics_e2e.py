"""The Analytics and Compliance console pages in headless Chromium: charts, filters, CSV, layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from preferences.sms import sms_keyword_handle
from tests.admin_console.seed import LOG_SQL, SEED_SQL
from tests.browser import admin_login, browser_page
from tracking.services.engagement_days import engagement_days_backfill

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(os.environ.get("COMMS_SCREENSHOTS_ANALYTICS", "/tmp/shots-i22-analytics"))

# The dashboard's seed with uuid7 ids (time prefix = created_at), as the API and bulk paths make them.
UUID7 = ("(lpad(to_hex((extract(epoch FROM %(now)s - make_interval(secs => g %% 3600)) * 1000)::bigint), 12, '0')"
         " || substr(md5(g::text), 1, 20))::uuid")


def seed(*, n: int, tenant, other_tenant, now) -> None:
    params = {"n": n, "tenant": str(tenant.pk), "other": str(other_tenant.pk), "now": now}
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL.replace("gen_random_uuid()", UUID7), params)
        cursor.execute(LOG_SQL, params)


# Opens and clicks over the last days, by device: what the engagement charts draw.
EVENTS_SQL = """
INSERT INTO tracking_messageevent (tenant_id, message_id, event_type, bounce_type, provider, provider_event_id,
  recipient_address, timestamp, recorded_at, link_url, link_id, user_agent, device_type, client, geo_country,
  geo_city, reason, data)
SELECT tenant_id, id, (ARRAY['opened','opened','clicked'])[1 + abs(hashtext(id::text)) %% 3], '', 'comms', '',
       recipient_address, %(now)s - make_interval(hours => abs(hashtext(id::text || 'h')) %% 150),
       %(now)s - make_interval(hours => abs(hashtext(id::text || 'h')) %% 150), '', '', '',
       (ARRAY['desktop','mobile','mobile','tablet'])[1 + abs(hashtext(id::text || 'd')) %% 4], '', '', '', '', '{}'
  FROM delivery_message WHERE status IN ('sent', 'delivered')
"""


# What the outcome path would have written for those messages (delivery.latency): per day and key, the
# sent rows' queue waits in bucket 30 (~1 s, P0) … 34 (~2.5 s, P4), every call in bucket 20 (~100 ms).
OUTCOMES_SQL = """
INSERT INTO delivery_outcomeday (day, tenant_id, channel, provider, priority, outcome, code, n, wait_hist, call_hist)
SELECT (updated_at AT TIME ZONE 'UTC')::date, tenant_id, channel, provider, priority, o, code, count(*),
       CASE WHEN o = 'sent' THEN array_fill(0::bigint, ARRAY[30 + priority]) || count(*)
                                 || array_fill(0::bigint, ARRAY[51 - priority]) END,
       array_fill(0::bigint, ARRAY[20]) || count(*) || array_fill(0::bigint, ARRAY[61])
  FROM (SELECT *, CASE WHEN status IN ('failed', 'dead') THEN status ELSE 'sent' END AS o,
               CASE WHEN status IN ('failed', 'dead') THEN failure_code ELSE '' END AS code
          FROM delivery_message
         WHERE status IN ('sent', 'delivered', 'bounced', 'complained', 'failed', 'dead')) m
 GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


def _no_page_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def _shots(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert _no_page_overflow(page), f"{name} overflows at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def _no_inline_code(page) -> None:
    """CSP: no inline <script> and no on* handler attributes anywhere on the page."""
    assert page.evaluate("[...document.scripts].every(s => s.src)")
    assert page.evaluate("[...document.querySelectorAll('*')].every(e => ![...e.attributes]"
                         ".some(a => a.name.startsWith('on')))")


def test_analytics_and_compliance_pages(live_server, tenant, other_tenant, tmp_path):
    now = timezone.now()
    seed(n=2_000, tenant=tenant, other_tenant=other_tenant, now=now)
    with connection.cursor() as cursor:
        cursor.execute(EVENTS_SQL, {"now": now})
        cursor.execute(OUTCOMES_SQL)
    engagement_days_backfill()  # what events_apply would have added up for those events
    sms_keyword_handle(tenant=tenant, from_number="+14155550199", to_number="+15005550006", body="STOP")
    get_user_model().objects.create_superuser("ana", "ana@example.com", "ana-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "ana")
        page.goto(f"{base}/console/analytics/")
        assert page.locator("svg.chart").count() == 5
        assert "email" in page.locator("#channels").inner_text()
        assert "mobile" in page.locator("#devices").inner_text()
        priorities = page.locator("#priorities").inner_text()
        assert "P0" in priorities and "891.3" in priorities  # P0 p50: the middle of bucket 30 (10^2.95 ms)
        assert "smtp" in page.locator("#calls").inner_text() and "connect" in page.locator("#errors").inner_text()
        _no_inline_code(page)
        _shots(page, "analytics")
        # Tenant filter (console.js submits on change) keeps the period.
        page.goto(f"{base}/console/analytics/?from={(now.date() - timezone.timedelta(days=6)).isoformat()}")
        with page.expect_navigation():
            page.select_option("#tenant-select", str(other_tenant.pk))
        assert f"tenant={other_tenant.pk}" in page.url
        assert page.locator(".period .meta").inner_text().startswith("7 UTC days")
        # A reversed period is a message on the page, not a crash.
        page.goto(f"{base}/console/analytics/?from=2026-03-01&to=2026-01-01")
        assert "from lies after to" in page.locator(".error").inner_text()

        page.goto(f"{base}/console/compliance/?tenant={tenant.pk}")
        assert "1" in page.locator("#unsubscribes").inner_text()
        assert "SMS STOP" in page.locator("#unsubscribes").inner_text()
        assert page.locator("#rates .over, #rates .ok").count() == 2
        _no_inline_code(page)
        _shots(page, "compliance")
        with page.expect_download() as download:
            page.click("#csv")
        path = tmp_path / "report.csv"
        download.value.save_as(path)
        text = path.read_text()
        assert text.startswith("section,key,value") and "sms_keywords,stop,1" in text

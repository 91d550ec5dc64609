"""The console's pools and warm-up page in headless Chromium: sends per pool, each ladder's day,
cap, sent and deferred per mailbox-provider group; a hold from the admin shows up; fits 1280 and
360 px (screenshots under /tmp/shots-i19-pools/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from delivery.deliverability import pools, warmup
from delivery.models import WarmupLadder
from delivery.services import SendSpec, drain_all, message_enqueue
from tests.browser import browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path("/tmp/shots-i19-pools")
OVERFLOW_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_pools_and_warmup_page(live_server, tenant, smtp_sink):
    SHOTS.mkdir(parents=True, exist_ok=True)
    today = timezone.now().date()
    pools.pool_create(name="transactional", categories=["transactional"])
    pools.pool_create(name="marketing", categories=["marketing"], description="newsletters")
    warmup.ladder_create(pool="marketing", schedule=[3, 6, 12, 25], started_on=today - timezone.timedelta(days=1))
    for i in range(9):
        message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"u{i}@gmail.com", subject="s", body="b",
                                                     priority=3, category="marketing"))
    for i in range(2):
        message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"t{i}@example.com", subject="s", body="b"))
    assert drain_all().sent == 8  # 6 of Gmail's day-2 cap + 2 receipts

    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    base = live_server.url
    with browser_page() as page:
        page.goto(f"{base}/admin/login/?next=/console/pools/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector("#warmup")
        sends = page.locator("#pool-sends tr[data-pool=marketing]").inner_text()
        assert "9" in sends and "6" in sends and "3" in sends  # all, sent, deferred
        gmail = page.locator("#warmup tr[data-pool=marketing][data-group=gmail]")
        assert gmail.locator(".day").inner_text() == "2 of 4"
        assert gmail.locator(".cap").inner_text() == "6"
        assert gmail.locator(".sent").inner_text() == "6"
        assert gmail.locator(".deferred").inner_text() == "3"
        assert page.locator("#warmup tr[data-group=yahoo] .sent").inner_text() == "0"
        assert page.evaluate(OVERFLOW_JS) == 0
        page.screenshot(path=str(SHOTS / "pools-1280.png"), full_page=True)

        # Deferred links to exactly those messages.
        gmail.locator(".deferred a").click()
        page.wait_for_selector("#result_list")
        assert page.locator("#result_list tbody tr").count() == 3

        # Hold the ladder from the admin; the page says so.
        page.goto(f"{base}/admin/delivery/warmupladder/")
        page.check("#result_list input.action-select")
        page.select_option("select[name=action]", "hold_selected")
        page.click("button[name=index]")
        page.wait_for_selector(".messagelist")
        assert WarmupLadder.objects.get().state == "held"
        page.goto(f"{base}/console/pools/")
        assert page.locator("#warmup tr[data-group=gmail] td.state-held").inner_text() == "held"

        page.set_viewport_size({"width": 360, "height": 800})
        page.goto(f"{base}/console/pools/")
        assert page.evaluate(OVERFLOW_JS) == 0
        page.screenshot(path=str(SHOTS / "pools-360.png"), full_page=True)

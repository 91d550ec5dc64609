"""The campaign's admin page shows the A/B table (variants, rates, P(best), p-value) in Chromium at 1280 and 360 px."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from delivery.services import drain_all
from tests.browser import admin_login, browser_page
from tests.comms.test_campaign_abtest import AB, _start, ab_template  # noqa: F401 (fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = "/tmp/shots-i22-ab"


def test_campaign_page_shows_the_ab_table(live_server, admin_api, ab_template, smtp_sink):  # noqa: F811
    campaign = _start(admin_api, AB)
    sent = drain_all().sent
    get_user_model().objects.create_superuser("abby", "abby@example.com", "abby-secret-pw")
    os.makedirs(SHOTS, exist_ok=True)
    with browser_page() as page:
        admin_login(page, live_server.url, "abby")
        page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
        table = page.locator("#campaign-ab")
        rows = table.locator("tbody tr")
        assert rows.count() == 2
        assert [rows.nth(i).locator("th").inner_text() for i in range(2)] == ["A", "B"]
        assert sum(int(rows.nth(i).locator("td").first.inner_text()) for i in range(2)) == sent
        assert "winner chosen at" in table.locator("caption").inner_text().lower()
        page.screenshot(path=f"{SHOTS}/campaign-ab-1280.png", full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        box = table.bounding_box()
        assert box is not None and box["width"] <= 360
        page.screenshot(path=f"{SHOTS}/campaign-ab-360.png", full_page=True)
        table.screenshot(path=f"{SHOTS}/campaign-ab-360-table.png")

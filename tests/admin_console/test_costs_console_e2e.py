"""The dashboard's Costs section in headless Chromium (1280 and 360 px)."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from django.utils import timezone

from delivery.costs import envelopes
from delivery.costs.models import CostDaily
from delivery.costs.services import envelope_set
from tests.admin_console.test_layout_e2e import OVERFLOW_JS, TABLES_JS
from tests.browser import SCREENSHOTS, admin_login, admin_staff, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_dashboard_shows_spend_against_the_envelope(live_server, tenant, other_tenant):
    today = timezone.now().date()
    for t, channel, provider, amount in ((tenant, "sms", "twilio", "410.50"), (tenant, "sms", "sns", "20"),
                                         (tenant, "email", "relay", "3.25"), (other_tenant, "sms", "twilio", "1")):
        CostDaily.objects.create(day=today, tenant_id=t.id, channel=channel, provider=provider, currency="USD",
                                 messages=100, units=100, amount=Decimal(amount))
    envelope_set(tenant=tenant, channel="sms", monthly_budget="500", actor=None)
    envelopes.clear_cache()
    admin_staff("cora", "CommsViewer")
    with browser_page() as page:
        admin_login(page, live_server.url, "cora")
        page.goto(f"{live_server.url}/console/")
        rows = page.locator("#costs tbody tr")
        texts = [rows.nth(i).inner_text().split("\t") for i in range(rows.count())]
        by = {(r[0], r[1]): r for r in texts}
        assert by[("default", "sms · twilio")][2:] == ["100", "410.50 USD", "430.50", "500.00", "86.1%"]
        assert by[("default", "email · relay")][5:] == ["—", "—"]
        assert by[("other", "sms · twilio")][3] == "1.00 USD"
        alert = [rows.nth(i).locator("td").nth(6).get_attribute("class") or "" for i in range(rows.count())]
        assert sum("alert" in c for c in alert) == 2  # both sms rows of the tenant over 80 %
        page.locator("#costs").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "costs-console-1280.png"))
        assert page.evaluate(OVERFLOW_JS) == 0 and page.evaluate(TABLES_JS) == []
        page.set_viewport_size({"width": 360, "height": 800})
        page.goto(f"{live_server.url}/console/?tenant={tenant.id}")
        assert page.locator("#costs tbody tr").count() == 3  # the tenant filter applies
        page.locator("#costs").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "costs-console-360.png"))
        assert page.evaluate(OVERFLOW_JS) == 0 and page.evaluate(TABLES_JS) == []


def test_the_message_page_shows_what_it_cost(live_server, tenant, smtp_sink):
    """A real send through the SMTP sink, priced; its admin page in Chromium at 1280 and 360 px."""
    from delivery.costs import prices
    from delivery.costs.services import price_set
    from delivery.services import SendSpec, drain_all, message_enqueue

    prices.clear_cache()
    price_set(tenant=None, provider="smtp", channel="email", price="0.00085", actor=None)
    message, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="ada@example.com", subject="s",
                                                              body="b"))
    assert drain_all().sent == 1
    prices.clear_cache()
    admin_staff("cora", "CommsViewer")
    with browser_page() as page:
        admin_login(page, live_server.url, "cora")
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/admin/delivery/message/{message.id}/change/")
            cost = page.locator(".field-cost .readonly")
            assert cost.inner_text() == "0.000850 USD · 1 message"
            cost.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / f"message-cost-{width}.png"))
            assert page.evaluate(OVERFLOW_JS) == 0

"""The provider configuration page in headless Chromium at 1280 and 360 px: the class suggestions open,
nothing overflows the viewport."""

from __future__ import annotations

import pytest

from delivery.models import ChannelProvider
from tests.browser import SCREENSHOTS, browser_page

pytestmark = pytest.mark.django_db(transaction=True)


def test_provider_page_at_two_widths(live_server, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "root-secret-pw")
    row = ChannelProvider.objects.create(channel="sms", name="bandwidth",
                                         provider_class="delivery.providers.bandwidth.BandwidthProvider")
    with browser_page() as page:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "root-secret-pw")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/admin/delivery/channelprovider/{row.pk}/change/")
            assert "account_id is missing" in page.content()
            options = page.eval_on_selector_all("#comms-provider-classes option", "els => els.map(e => e.value)")
            assert "delivery.providers.vonage.VonageProvider" in options
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            page.screenshot(path=str(SCREENSHOTS / f"provider-admin-{width}.png"), full_page=True)
            assert overflow <= 0, (width, overflow)

"""The campaign admin form's best-hour schedule, in headless Chromium at 1280 and 360 px: a missing
or out-of-range window is refused on the form (the service's typed error), a good one is stored."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from comms.campaigns.models import Campaign
from tests.browser import SCREENSHOTS, admin_login, browser_page
from tests.comms.router_fixtures import booking_templates, person

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _save(page) -> None:
    with page.expect_navigation():
        page.click("input[name=_save]")


def _errors(page) -> str:
    return " ".join(page.locator(".errornote, .errorlist").all_inner_texts())


def _no_horizontal_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_best_hour_schedule_in_the_admin_form(live_server, tenant):
    booking_templates(tenant)
    person(tenant, "ada")
    get_user_model().objects.create_superuser("root", "root@example.com", "root-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "root")
        page.goto(f"{base}/admin/campaigns/campaign/add/")
        assert "best hour" in page.locator("#id_schedule_kind").inner_text()
        page.select_option("#id_tenant", str(tenant.pk))
        page.fill("#id_name", "Best hour bookings")
        page.check("input[name=channels][value=email]")
        page.fill("#id_template", "booking_confirmed")
        page.fill("#id_variables", '{"booking_id": "B-7", "status": "open"}')
        page.fill("#id_recipients", "ada")
        page.select_option("#id_schedule_kind", "best")
        _save(page)
        assert "Give the window in hours (1–168)." in _errors(page)

        page.fill("#id_best_within_hours", "169")
        _save(page)
        assert "COMMS_SEND_TIME_WINDOW" in _errors(page)
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.locator("#id_best_within_hours").scroll_into_view_if_needed()
            _no_horizontal_overflow(page)
            page.screenshot(path=str(SCREENSHOTS / f"campaign-best-hour-refused-{width}.png"), full_page=True)
        assert not Campaign.objects.exists()

        page.set_viewport_size({"width": 1280, "height": 900})
        page.fill("#id_best_within_hours", "36")
        _save(page)
        page.wait_for_selector(".messagelist")
        campaign = Campaign.objects.get()
        assert (campaign.schedule_kind, campaign.best_within_hours, campaign.send_at) == ("best", 36, None)

        page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/change/")
        assert page.locator("#id_best_within_hours").input_value() == "36"
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            _no_horizontal_overflow(page)
            page.screenshot(path=str(SCREENSHOTS / f"campaign-best-hour-draft-{width}.png"), full_page=True)

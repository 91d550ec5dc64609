"""Creating a campaign in the Django admin, in headless Chromium: the API's service checks refuse bad
input on the form, a good one is stored as a draft, and past draft the page is read-only."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from comms.models import AuditEntry
from comms.campaigns.models import Campaign
from tests.browser import SCREENSHOTS, admin_login, browser_page
from tests.comms.router_fixtures import booking_templates, person

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _save(page) -> None:
    with page.expect_navigation():
        page.click("input[name=_save]")


def _errors(page) -> str:
    return page.locator(".errornote, .errorlist").all_inner_texts().__str__()


def test_create_a_campaign_in_the_admin(live_server, tenant):
    booking_templates(tenant)
    person(tenant, "ada", tz="Europe/Berlin")
    person(tenant, "bob", tz="Asia/Tokyo")
    person(tenant, "cyd", email=False)
    get_user_model().objects.create_superuser("root", "root@example.com", "root-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "root")

        page.goto(f"{base}/admin/campaigns/campaign/add/")
        page.select_option("#id_tenant", str(tenant.pk))
        page.fill("#id_name", "Winter bookings")
        page.check("input[name=channels][value=email]")
        page.fill("#id_template", "no_such_template")
        page.fill("#id_variables", '{"booking_id": "B-7", "status": "open"}')
        page.select_option("#id_audience_kind", "list")
        page.fill("#id_recipients", "cyd")
        _save(page)
        assert "COMMS_TEMPLATE_NOT_FOUND" in _errors(page)

        page.fill("#id_template", "booking_confirmed")
        _save(page)
        assert "COMMS_AUDIENCE_EMPTY" in _errors(page)  # cyd has no e-mail address

        page.fill("#id_recipients", "ada\nbob\ncyd")
        page.select_option("#id_schedule_kind", "local")
        page.fill("#id_local_date", "2020-01-01")
        page.fill("#id_local_time", "09:00")
        _save(page)
        assert "COMMS_SCHEDULE_IN_PAST: local_date 2020-01-01 lies in the past" in _errors(page)
        assert page.locator("input[name=channels][value=webhook]").count() == 0  # campaigns refuse webhook
        page.screenshot(path=str(SCREENSHOTS / "campaign-admin-add-refused.png"), full_page=True)
        assert not Campaign.objects.exists()

        page.fill("#id_local_date", "2030-12-01")
        page.fill("#id_throttle_per_minute", "600")
        _save(page)
        page.wait_for_selector(".messagelist")
        campaign = Campaign.objects.get()
        assert (campaign.state, campaign.audience_size, campaign.schedule_kind) == ("draft", 2, "local")
        assert (campaign.audience_list, campaign.throttle_per_minute) == (["ada", "bob", "cyd"], 600)
        assert campaign.created_by.username == "root"
        assert AuditEntry.objects.get(action="campaign.create").target_id == str(campaign.pk)

        page.check(f"input[name=_selected_action][value='{campaign.pk}']")
        page.select_option("select[name=action]", "campaign_scheduled")
        page.click("button[name=index]")
        page.wait_for_selector(".messagelist")
        assert "Winter bookings: scheduled." in page.locator(".messagelist").inner_text()

        page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/change/")
        assert page.locator("#id_name").count() == 0  # past draft: read-only, changed only by the actions
        assert page.locator("input[name=_save]").count() == 0
        # local-time campaigns start at once: the fan-out writes each zone's rows held until 09:00 there
        assert "Running" in page.locator(".field-state").inner_text()
        assert "total:" in page.locator(".field-progress").inner_text()
        assert "sent: 0" in page.locator("#campaign-metrics").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "campaign-admin-scheduled.png"), full_page=True)
    campaign.refresh_from_db()
    assert campaign.state == "running" and campaign.started_at is not None

"""Routing rules in the Django admin, in headless Chromium: schema errors, versions, dry run, unrouted events."""

from __future__ import annotations

import json
import os

import pytest
from django.contrib.auth import get_user_model

from comms.router.models import Event, RoutingRule
from tests.browser import SCREENSHOTS, admin_login, browser_page
from tests.comms.router_fixtures import booking_templates, person

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_rule_edit_versions_and_dry_run(live_server, tenant):
    booking_templates(tenant)
    person(tenant, "ada")
    person(tenant, "bob", email=False)
    Event.objects.create(tenant=tenant, name="nobody.listens", state="no_route")
    get_user_model().objects.create_superuser("root", "root@example.com", "root-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "root")

        page.goto(f"{base}/admin/router/routingrule/add/")
        page.select_option("#id_tenant", str(tenant.pk))
        page.fill("#id_event_name", "booking.confirmed")
        bad = {"steps": [{"template": "booking_confirmed", "channels": ["email", "fax"]}]}
        page.fill("#id_definition", json.dumps(bad))
        page.click("input[name=_continue]")
        error = page.locator(".errorlist").first.inner_text()
        assert "$.steps[0].channels[1]" in error
        good = {"steps": [{"template": "booking_confirmed", "channels": ["email", "in_app"],
                           "when": "payload.amount > 100"}]}
        page.fill("#id_definition", json.dumps(good))
        page.fill("#id_notes", "first version")
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist")
        rule = RoutingRule.objects.get()
        assert rule.active_version.version == 1
        good["steps"][0]["delay_seconds"] = 60
        page.fill("#id_definition", json.dumps(good))
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist")
        rule.refresh_from_db()
        assert rule.active_version.version == 2 and rule.versions.count() == 2
        page.screenshot(path=str(SCREENSHOTS / "router-rule-change.png"), full_page=True)

        page.click("text=Dry run with a sample event")
        page.fill("#id_event", json.dumps({"recipients": ["ada", "bob", "ghost"], "cause_ref": "s1",
                                           "payload": {"booking_id": "B1", "amount": 500}}))
        page.click("#dry-run-submit")
        page.wait_for_selector("#dry-run-result")
        rows = page.locator("#dry-run-result tbody tr")
        assert rows.count() == 3
        assert "send" in rows.nth(0).inner_text() and "email" in rows.nth(0).inner_text()
        assert "in_app" in rows.nth(1).inner_text() and "email: no address" in rows.nth(1).inner_text()
        assert "COMMS_RECIPIENT_NOT_FOUND" in rows.nth(2).inner_text()
        page.screenshot(path=str(SCREENSHOTS / "router-dry-run.png"), full_page=True)

        from comms.campaigns.services import campaign_create

        campaign = campaign_create(tenant=tenant, data={"name": "Spring sale", "channels": ["email"],
                                                        "template": "booking_confirmed",
                                                        "variables": {"booking_id": "X"},
                                                        "audience": {"recipients": ["ada"]}})
        page.goto(f"{base}/admin/campaigns/campaign/")
        page.check(f"input[name=_selected_action][value='{campaign.pk}']")
        page.select_option("select[name=action]", "campaign_scheduled")
        page.click("button[name=index]")
        page.wait_for_selector(".messagelist")
        assert "Spring sale: scheduled." in page.locator(".messagelist").inner_text()
        page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/change/")
        assert "total:" in page.locator(".field-progress").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "router-campaign.png"), full_page=True)

        page.goto(f"{base}/admin/router/event/?state__exact=no_route")
        assert "nobody.listens" in page.locator("#result_list").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "router-unrouted-events.png"), full_page=True)
    from delivery.models import Message

    assert not Message.objects.exists()  # the dry run sent nothing

"""The A/B settings in the admin campaign form and the "decide now" button, in headless Chromium at
1280 and 360 px: the service's typed errors land on their fields, a good form stores the ab_test the
API would, and the button decides through the same service as the API (audited as the signed-in user)."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from comms.campaigns.models import Campaign
from comms.models import AuditEntry
from delivery.models import Message
from delivery.services import drain_all
from tests.browser import admin_login, browser_page
from tests.comms.test_campaign_abtest import AB, N, _open, _start, ab_template  # noqa: F401 (fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = "/tmp/shots-i22-ab2"


def _save(page) -> None:
    with page.expect_navigation():
        page.click("input[name=_save]")


def _field_error(page, field: str) -> str:
    return " ".join(page.locator(f".field-{field} .errorlist").all_inner_texts())


def _fits(page, selector: str, width: int) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


def test_ab_settings_are_edited_in_the_campaign_form(live_server, tenant, ab_template):  # noqa: F811
    get_user_model().objects.create_superuser("abby", "abby@example.com", "abby-secret-pw")
    os.makedirs(SHOTS, exist_ok=True)
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "abby")
        page.goto(f"{base}/admin/campaigns/campaign/add/")
        page.select_option("#id_tenant", str(tenant.pk))
        page.fill("#id_name", "Spring sale A/B")
        page.check("input[name=channels][value=email]")
        page.fill("#id_template", "promo")
        page.fill("#id_recipients", "\n".join(f"u{i}" for i in range(N)))
        page.check("#id_ab_enabled")
        page.fill("#id_ab_sample_percent", "60")
        _save(page)
        assert "COMMS_AB_BAD_SAMPLE" in _field_error(page, "ab_sample_percent")
        page.fill("#id_ab_sample_percent", "15")
        page.fill("#id_ab_default_variant", "Z")
        _save(page)
        assert "COMMS_AB_UNKNOWN_VARIANT" in _field_error(page, "ab_default_variant")
        page.fill("#id_ab_mde", "2")
        page.fill("#id_ab_default_variant", "B")
        _save(page)
        assert "COMMS_VALIDATION_ERROR" in _field_error(page, "ab_mde")
        assert not Campaign.objects.exists()
        page.locator(".field-ab_mde").scroll_into_view_if_needed()
        page.screenshot(path=f"{SHOTS}/campaign-ab-form-error-1280.png", full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        for field in ("ab_enabled", "ab_sample_percent", "ab_default_variant", "ab_mde"):
            _fits(page, f".field-{field}", 360)
        page.screenshot(path=f"{SHOTS}/campaign-ab-form-error-360.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.fill("#id_ab_mde", "0.4")
        page.fill("#id_ab_wait_hours", "6")
        page.fill("#id_ab_min_sample", "5")
        page.select_option("#id_ab_metric", "conversion")
        _save(page)
        page.wait_for_selector(".messagelist")
        campaign = Campaign.objects.get()
        assert campaign.ab_test == {"sample_percent": 15.0, "wait_hours": 6.0, "metric": "conversion", "min_sample": 5,
                                    "control": "A", "default_variant": "B", "mde": 0.4, "variants": ["A", "B"]}

        page.goto(f"{base}/admin/campaigns/campaign/{campaign.pk}/change/")  # the draft shows what it holds
        assert page.locator("#id_ab_enabled").is_checked()
        assert page.input_value("#id_ab_sample_percent") == "15.0"
        assert page.input_value("#id_ab_metric") == "conversion"
        page.uncheck("#id_ab_enabled")  # and switching it off stores no test
        _save(page)
        campaign.refresh_from_db()
        assert campaign.ab_test == {}


def test_decide_now_button_on_a_running_campaign(live_server, client, admin_api, ab_template, smtp_sink):  # noqa: F811
    campaign = _start(admin_api, AB)
    drain_all()
    for m in Message.objects.filter(sent_at__isnull=False, variant="B"):
        _open(client, smtp_sink, m)
    get_user_model().objects.create_superuser("abby", "abby@example.com", "abby-secret-pw")
    base = live_server.url
    url = f"{base}/admin/campaigns/campaign/{campaign.pk}/change/"
    with browser_page() as page:
        admin_login(page, base, "abby")
        page.goto(url)
        page.locator("#ab-decide").scroll_into_view_if_needed()
        page.screenshot(path=f"{SHOTS}/campaign-ab-decide-1280.png", full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        _fits(page, "#ab-decide", 360)
        _fits(page, "#ab-decide button", 360)
        page.locator("#ab-decide").screenshot(path=f"{SHOTS}/campaign-ab-decide-360.png")
        page.screenshot(path=f"{SHOTS}/campaign-ab-decide-360-page.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.select_option("#ab_variant", "A")  # forcing needs a reason
        with page.expect_navigation():
            page.click("button[name=ab_decide_now]")
        assert "COMMS_VALIDATION_ERROR" in page.locator(".messagelist").inner_text()
        assert "winner" not in Campaign.objects.get(pk=campaign.pk).ab_test

        page.select_option("#ab_variant", "")  # by the rules: B's opens win
        with page.expect_navigation():
            page.click("button[name=ab_decide_now]")
        assert "winner B (decided early: significant)" in page.locator(".messagelist").inner_text()
        assert page.locator("#ab-decide").count() == 0  # decided: no button any more
        assert "winner b" in page.locator("#campaign-ab caption").inner_text().lower()
    campaign.refresh_from_db()
    assert campaign.ab_test["winner"] == "B" and campaign.ab_test["decided_by"] == "manual"
    audit = AuditEntry.objects.get(action="campaign.abtest_winner")
    assert audit.actor_label == "abby" and audit.diff["manual"] is True

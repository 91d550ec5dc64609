"""The sending domain admin page and the console's bulk-sender readiness panel, in headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from delivery.deliverability.models import SendingDomain
from tests.browser import admin_login, admin_staff, browser_page
from tests.delivery.deliverability_support import _fresh_keys, dns_server, publish  # noqa: F401  (fixtures)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(os.environ.get("COMMS_SCREENSHOTS_DELIVERABILITY", "/tmp/shots-i19-dkim"))


def _no_page_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def _shots(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert _no_page_overflow(page), f"{name} overflows at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_admin_domain_page_and_readiness_panel(live_server, tenant, dns_server, settings):
    settings.COMMS_SPF_INCLUDES = ["relay.example.net"]
    get_user_model().objects.create_superuser("sam", "sam@example.com", "sam-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "sam")
        page.goto(f"{base}/admin/delivery/sendingdomain/add/")
        page.select_option("#id_tenant", str(tenant.pk))
        page.fill("#id_domain", "not a domain")
        page.click("input[name=_save]")
        assert "Give the bare domain" in page.locator(".errorlist").inner_text()
        page.fill("#id_domain", "Example.COM.")
        page.click("input[name=_continue]")
        page.wait_for_selector(".field-records_table")
        domain = SendingDomain.objects.get(domain="example.com")
        values = page.eval_on_selector_all("textarea.dns-value", "els => els.map(e => e.value)")
        assert any(v.startswith('"v=DKIM1; k=rsa; p=') and '" "' in v for v in values)  # split, copy-ready
        assert any(v.startswith("v=DKIM1; k=ed25519; p=") for v in values)
        assert "v=spf1 include:relay.example.net ~all" in values
        assert "not checked yet" in page.locator(".field-last_check_table").inner_text()
        _shots(page, "admin-sending-domain")

        # Publish the good zone for example.com; add a second domain that publishes nothing.
        publish(dns_server, domain)
        dns_server.zones.add_txt("relay.example.net", "v=spf1 ip4:192.0.2.0/24 -all")
        dns_server.zones.add_mx("example.com", "mx.example.com")
        page.goto(f"{base}/admin/delivery/sendingdomain/add/")
        page.select_option("#id_tenant", str(tenant.pk))
        page.fill("#id_domain", "broken.example")
        page.click("input[name=_save]")
        page.wait_for_selector("#result_list")
        page.check("#action-toggle")
        page.select_option("select[name=action]", "check_now")
        page.click("button[name=index]")
        notes = page.locator(".messagelist").inner_text().lower()  # the admin capitalises messages
        assert "example.com: ok" in notes and "broken.example: fail" in notes
        assert page.locator("#result_list .dns-ok").count() == 1 and page.locator("#result_list .dns-fail").count() == 1
        _shots(page, "admin-sending-domains-list")

        page.goto(f"{base}/console/deliverability/")
        good = page.locator(f"#domain-{domain.pk}")
        assert "bulk-sender ready" in good.locator(".verdict").inner_text()
        assert good.locator(".checks .status-ok").count() == 5
        requirements = good.locator(".requirements").inner_text()
        assert "One-click unsubscribe" in requirements and "no mail sent from this domain" in requirements
        broken = page.locator(f"#domain-{SendingDomain.objects.get(domain='broken.example').pk}")
        assert "not ready" in broken.locator(".verdict").inner_text()
        assert "no SPF record" in broken.locator(".checks").inner_text()
        _shots(page, "console-deliverability")


def test_readiness_panel_for_a_viewer_and_empty_state(live_server, tenant):
    admin_staff("vera", "CommsViewer")
    with browser_page() as page:
        admin_login(page, live_server.url, "vera")
        response = page.goto(f"{live_server.url}/console/deliverability/")
        assert response.status == 200
        assert "No sending domain yet" in page.locator("main").inner_text()
        _shots(page, "console-deliverability-empty")

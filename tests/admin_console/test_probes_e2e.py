"""The probes console page and the spam verdict in the template admin, in headless Chromium at 1280 and
360 px: nothing overflows sideways, the chart's marks stay in its plot box, and the figures show."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from comms.services import tenant_get_default
from delivery.deliverability import probes
from delivery.deliverability.models_probes import Probe
from delivery.services import drain_all
from templates_app import services as template_services
from tests.admin_console.test_layout_e2e import OVERFLOW_JS
from tests.browser import SCREENSHOTS, browser_page
from tests.templates_app.fixtures import order_template_data

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
# Every circle/line of the chart lies inside the data-plot box (x0 y0 x1 y1), with a pixel of slack.
MARKS_OUTSIDE_JS = """() => { const svg = document.querySelector('#probes-chart svg');
  const [x0, y0, x1, y1] = svg.dataset.plot.split(' ').map(Number); let bad = 0;
  svg.querySelectorAll('circle').forEach(c => { const x = +c.getAttribute('cx'), y = +c.getAttribute('cy');
    if (x < x0 - 1 || x > x1 + 1 || y < y0 - 1 || y > y1 + 1) bad++; }); return bad; }"""


def _history(tenant) -> None:
    """A day of earlier rounds (fixture rows), so the trend has something to draw."""
    now = timezone.now()
    for i in range(24):
        at = now - timedelta(hours=24 - i)
        Probe.objects.create(tenant=tenant, channel="email", provider="smtp", address="probe@sink.test",
                             state="delivered", created_at=at, sent_seconds=0.4 + (i % 5) / 10,
                             delivered_seconds=1.5 + (i % 7) / 3)
        Probe.objects.create(tenant=tenant, channel="sms", provider="twilio", address="+15005550010",
                             state="delivered" if i != 20 else "timeout", created_at=at, sent_seconds=0.8,
                             delivered_seconds=4.0 + (i % 4) if i != 20 else None, slo_missed=i == 20)


def _shoot(page, name: str) -> None:
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        assert page.evaluate(OVERFLOW_JS) <= 0, f"{name} overflows at {width}px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


def test_probes_page_shows_latest_and_trend(live_server, settings, smtp_sink, tmp_path):
    import mailbox

    smtp_sink.maildir = mailbox.Maildir(str(tmp_path / "mail"), create=True)
    settings.COMMS_PROBE_MAILDIR = str(tmp_path / "mail")
    settings.COMMS_PROBE_RECIPIENTS = {"email": "probe@sink.test"}
    tenant = tenant_get_default()
    _history(tenant)
    try:
        probes.probes_send()
        drain_all()
        probes.probes_collect()
    finally:
        smtp_sink.maildir = None
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    with browser_page() as page:
        page.goto(f"{live_server.url}/admin/login/?next=/console/probes/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector("#probes-latest")
        latest = page.locator("#probes-latest tbody").inner_text()
        assert "email / smtp" in latest and "sms / twilio" in latest and "delivered" in latest
        assert page.locator("#probes-chart svg circle").count() >= 40
        assert page.evaluate(MARKS_OUTSIDE_JS) == 0
        assert page.locator("#probes-recent td.missed").inner_text() == "timeout"
        _shoot(page, "probes")


def test_spam_verdict_in_the_version_admin(live_server, settings, spamd):
    settings.COMMS_ASSET_CHECK = False
    editor = get_user_model().objects.create_superuser("edith", "e@example.com", "correct horse battery")
    template = template_services.template_create(tenant=tenant_get_default(), actor=editor, user=editor,
                                                  data=order_template_data())
    version = template_services.version_submit(version=template.versions.get(), actor=editor, user=editor)
    with browser_page() as page:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/templates_app/templateversion/{version.pk}/change/")
        page.fill("#id_username", "edith")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector(".comms-spam")
        assert "spam score" in page.locator(".field-spam_at_submit").inner_text()
        assert page.locator(".comms-preview[data-channel=email] .comms-spam").count() == 1
        _shoot(page, "spam-verdict")

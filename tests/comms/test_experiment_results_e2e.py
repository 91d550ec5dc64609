"""A template experiment's results page in headless Chromium (1280 and 360 px): real sends of the
version's variants into the SMTP sink, opens through our pixel, the per-variant table (rate, P(best),
p against the control, sample reached vs needed) reached from the version page; bad input is a typed note."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from delivery.models import Message
from delivery.services import drain_all
from tests.browser import admin_login, browser_page
from tests.comms.test_campaign_abtest import _open, ab_template  # noqa: F401 (fixture)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = "/tmp/shots-i22-ab2"


def _cells(page, variant: str) -> list[str]:
    return page.locator(f"#experiment-results tr[data-variant={variant}] td").all_inner_texts()


def test_experiment_results_page(live_server, client, api, ab_template, smtp_sink):  # noqa: F811
    sent = api.post("/api/v1/messages/bulk", {
        "channel": "email", "template": "promo", "category": "marketing",
        "recipients": [{"to": f"u{i}@example.com"} for i in range(60)]}, format="json")
    assert sent.status_code in (200, 201, 202), sent.content
    assert drain_all().sent == 60
    b_sent = list(Message.objects.filter(variant="B", sent_at__isnull=False))
    assert 10 < len(b_sent) < 50
    for m in b_sent:
        _open(client, smtp_sink, m)
    get_user_model().objects.create_superuser("exa", "exa@example.com", "exa-secret-pw")
    version = ab_template.active_version
    base = live_server.url
    os.makedirs(SHOTS, exist_ok=True)
    with browser_page() as page:
        admin_login(page, base, "exa")
        page.goto(f"{base}/admin/templates_app/templateversion/{version.pk}/change/")
        with page.expect_navigation():
            page.click("#experiment-results-link")
        a, b = _cells(page, "A"), _cells(page, "B")
        # weight, sent, opens, rate, P(best), lift, p, sample reached
        assert (int(a[1]) + int(b[1]), b[2], b[3], a[3]) == (60, str(len(b_sent)), "100.0%", "0.0%")
        assert float(b[4].rstrip("%")) > 99 and float(b[6]) < 0.001
        summary = page.locator("#experiment-summary").inner_text()
        assert "Sample needed per variant" in summary and "Significant winner: B" not in summary  # 0.02 needs more
        page.screenshot(path=f"{SHOTS}/experiment-results-1280.png", full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        box = page.locator("#experiment-results").bounding_box()  # cards, not a table to scroll sideways
        assert box is not None and box["x"] + box["width"] <= 360
        assert page.locator("#experiment-results tr[data-variant=B] td[data-label=p]").is_visible()
        page.screenshot(path=f"{SHOTS}/experiment-results-360.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})

        page.fill("#mde", "0.5")  # a large lift needs few sends: B is a significant winner
        with page.expect_navigation():
            page.click("#experiment-filter input[type=submit]")
        assert "Significant winner: B" in page.locator("#experiment-summary").inner_text()
        page.select_option("#metric", "click")
        with page.expect_navigation():
            page.click("#experiment-filter input[type=submit]")
        assert _cells(page, "B")[2] == "0"  # nobody clicked
        page.fill("#mde", "2")
        with page.expect_navigation():
            page.click("#experiment-filter input[type=submit]")
        assert "COMMS_VALIDATION_ERROR" in page.locator(".errornote").inner_text()
        page.goto(f"{base}/admin/templates_app/templateversion/{version.pk}/results/?metric=revenue")
        assert "COMMS_AB_BAD_METRIC" in page.locator(".errornote").inner_text()

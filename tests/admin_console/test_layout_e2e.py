"""Every list and chart fits: no page of the admin or the console scrolls sideways at 1280 px, the
console also fits a 360 px phone, wide tables scroll inside their own box, and chart points stay
inside the chart's axes (issue 13 item 13)."""

from __future__ import annotations

import os

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from admin_console import workers
from tests.admin_console.seed import seed
from tests.browser import SCREENSHOTS, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

# How far the document is wider than the window (0 = fits, nothing scrolls sideways).
OVERFLOW_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
# How far the changelist's table is wider than its box (columns hidden behind a scroll bar).
RESULTS_JS = """() => { const r = document.querySelector('#changelist-form .results');
                        return r ? r.scrollWidth - r.clientWidth : 0; }"""
# The tallest row of the list: one line of text is ~34 px; a wrapped UUID made rows four lines high.
ROW_JS = """() => Math.max(0, ...[...document.querySelectorAll('#result_list tbody tr')]
                                 .map(r => r.getBoundingClientRect().height))"""


def _login(page, base: str) -> None:
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def _changelists() -> list[str]:
    return [reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist") for m in admin.site._registry]


def _webhook_events() -> None:
    from webhooks.models import WebhookEvent

    for i, (state, valid) in enumerate([("processed", True), ("failed", False), ("retrying", None)] * 3):
        WebhookEvent.objects.create(
            provider="sendgrid", event_type="delivered,open,click,bounce,dropped,spamreport", body="[]", payload=[],
            state=state, signature_valid=valid, events_total=3, events_applied=2, events_duplicate=1,
            signature_error="" if valid is not False else "signature mismatch: expected HMAC-SHA256 of "
                                                          "timestamp+payload with the verification key")


def test_every_admin_changelist_fits_1280(live_server, tenant, other_tenant):
    seed(n=400, tenant=tenant, other_tenant=other_tenant, now=timezone.now())
    _webhook_events()
    overflowing = {}
    for old in SCREENSHOTS.glob("overflow-*.png"):
        old.unlink()
    with browser_page() as page:
        _login(page, live_server.url)
        urls = _changelists()
        assert len(urls) > 20  # really walking every registered model
        for url in urls:
            page.goto(f"{live_server.url}{url}")
            page.wait_for_selector("#changelist, #content")
            excess = (page.evaluate(OVERFLOW_JS), page.evaluate(RESULTS_JS), page.evaluate(ROW_JS))
            if excess[0] or excess[1] or excess[2] > 40:
                overflowing[url] = excess
                page.screenshot(path=str(SCREENSHOTS / f"overflow{url.replace('/', '-')}.png"))
    assert overflowing == {}


@pytest.mark.parametrize("width", [1280, 360])
def test_message_and_webhook_lists_show_every_column_on_one_line(live_server, tenant, other_tenant, width):
    """The message list had status and later columns off-screen and UUIDs on four lines; the webhook
    list had "State" on four lines. At 1280 every column shows; at 360 the table scrolls in its box."""
    seed(n=200, tenant=tenant, other_tenant=other_tenant, now=timezone.now())
    _webhook_events()
    with browser_page() as page:
        _login(page, live_server.url)
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in (("messages", "/admin/delivery/message/"), ("webhook-events", "/admin/webhooks/webhookevent/")):
            page.goto(f"{live_server.url}{url}")
            page.screenshot(path=str(SCREENSHOTS / f"layout-{name}-{width}.png"))
            assert page.evaluate(OVERFLOW_JS) == 0
            assert page.evaluate(ROW_JS) <= 40
            if width == 1280:
                assert page.evaluate(RESULTS_JS) == 0
                last = page.locator("#result_list thead th").last
                assert last.is_visible() and last.bounding_box()["x"] + last.bounding_box()["width"] <= width
        page.goto(f"{live_server.url}/admin/delivery/message/")
        first = page.locator("#result_list tbody tr").first.locator("th a span.comms-id")
        assert len(first.inner_text()) == 8 and len(first.get_attribute("title")) == 36  # full id on hover
        cells = page.locator("#result_list tbody tr").first.locator("td").all_inner_texts()
        assert any(c.endswith("@example.com") for c in cells) and any(c in ("P0", "P1", "P2", "P3", "P4") for c in cells)


# Every circle of every line chart inside the chart's plot area (the box its axes draw), and every
# chart inside the window. Returns the offending points/charts.
CHART_JS = """() => {
  const bad = [];
  document.querySelectorAll('svg.chart').forEach((svg, n) => {
    const [x0, y0, x1, y1] = svg.dataset.plot.split(' ').map(Number);
    svg.querySelectorAll('circle').forEach(c => {
      const x = +c.getAttribute('cx'), y = +c.getAttribute('cy');
      if (x < x0 || x > x1 || y < y0 || y > y1) bad.push(`chart ${n}: point ${x},${y} outside ${svg.dataset.plot}`);
    });
    const width = svg.viewBox.baseVal.width;
    svg.querySelectorAll('text').forEach(t => {  // no label cut off at the chart's edges
      const b = t.getBBox();
      if (b.x < 0 || b.x + b.width > width + 0.5) bad.push(`chart ${n}: text "${t.textContent}" cut off`);
    });
    const labels = [...svg.querySelectorAll('text.axis[text-anchor=middle]')].map(t => t.getBBox());
    labels.slice(1).forEach((b, i) => {  // x labels never overlap
      if (b.x < labels[i].x + labels[i].width) bad.push(`chart ${n}: x labels ${i} and ${i + 1} overlap`);
    });
    const box = svg.getBoundingClientRect();
    if (box.right > document.documentElement.clientWidth + 0.5) bad.push(`chart ${n}: right edge ${box.right}`);
    if (box.width < 200) bad.push(`chart ${n}: squeezed to ${box.width}px`);
  });
  return bad;
}"""
# Tables wider than their box: they must sit in a box that scrolls sideways (not clip, not push the page).
TABLES_JS = """() => [...document.querySelectorAll('main table')].filter(t => {
  const box = t.parentElement;
  return t.getBoundingClientRect().width > box.clientWidth + 1 &&
         !['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
}).map(t => t.id)"""


def test_console_fits_1280_and_360_and_its_charts_stay_inside_their_axes(live_server, tenant, other_tenant):
    seed(n=3000, tenant=tenant, other_tenant=other_tenant, now=timezone.now())
    workers.beat(hostname="celery@p0-host", queues=["p0", "p1"])
    with browser_page() as page:
        _login(page, live_server.url)
        page.goto(f"{live_server.url}/console/")
        page.screenshot(path=str(SCREENSHOTS / "layout-console-1280.png"), full_page=True)
        page.locator("svg.chart").nth(1).screenshot(path=str(SCREENSHOTS / "layout-console-1280-quality-chart.png"))
        assert page.locator("svg.chart circle").count() >= 7  # the 7-day chart really has its points
        assert page.evaluate(OVERFLOW_JS) == 0
        assert page.evaluate(CHART_JS) == []
        assert page.evaluate(TABLES_JS) == []
        queue = page.locator("#queue-depth")  # every status column visible at 1280, "cancelled" included
        assert queue.get_by_text("cancelled").is_visible()
        box = page.evaluate("() => { const t = document.querySelector('#queue-depth');"
                            " return [t.getBoundingClientRect().right, t.parentElement.getBoundingClientRect().right] }")
        assert box[0] <= box[1] + 1
        page.set_viewport_size({"width": 360, "height": 800})
        page.goto(f"{live_server.url}/console/")
        page.screenshot(path=str(SCREENSHOTS / "layout-console-360.png"), full_page=True)
        page.screenshot(path=str(SCREENSHOTS / "layout-console-360-top.png"))
        page.locator("svg.chart").nth(1).scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "layout-console-360-quality.png"))
        assert page.evaluate(OVERFLOW_JS) == 0
        assert page.evaluate(TABLES_JS) == []
        assert page.evaluate(CHART_JS) == []

"""Journey admin pages in headless Chromium: the list with run counts, the detail page (funnel, versions,
migrate, pause/resume), the run list and a run's timeline, and the simulation form. Runs come from the
real intake and engine (abandoned-cart journey, time moved by passing `now=`)."""

from __future__ import annotations

import json
import os

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from comms.router.journeys import journey_save
from comms.router.models import Journey, JourneyRun
from tests.browser import SCREENSHOTS, admin_login, admin_staff, browser_page
from tests.comms.journey_fixtures import CART, advance, definition, hours, ingest, journey_templates, shopper

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _shots(page, name: str) -> None:
    """Full-page screenshots at 1280 and 360 px, and nothing wider than the window at either width."""
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width} px is {overflow} px wider than the window"
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def cart(tenant):
    """Three shoppers in the cart journey: bea bought (exited), olga and ivan got the email and wait a day;
    then v2 is saved, so the two waiting runs are on v1 and new runs would start on v2."""
    journey_templates(tenant)
    journey_save(tenant=tenant, key="cart", definition=CART, name="Abandoned cart")
    shopper(tenant, "olga", phone=True)
    shopper(tenant, "ivan", push=True)
    shopper(tenant, "bea", phone=True)
    t0 = timezone.now() - hours(2)
    for who in ("olga", "ivan", "bea"):
        ingest(tenant, "cart.abandoned", [who], {"cart_id": f"C-{who}", "total": 30}, t0, cause_ref=f"cart-{who}")
    advance(t0)
    ingest(tenant, "order.placed", ["bea"], {"cart_id": "C-bea"}, t0 + hours(0.5), cause_ref="o-1")
    advance(t0 + hours(0.5))
    advance(t0 + hours(1))
    steps = dict(CART["steps"], wait_day={"type": "wait", "seconds": 2 * 86400, "next": "opened?"})
    journey_save(tenant=tenant, key="cart", definition=definition(CART, steps=steps), notes="wait two days")
    return Journey.objects.get(key="cart")


def test_journey_list_detail_funnel_and_actions(live_server, cart):
    get_user_model().objects.create_superuser("root", "root@example.com", "root-secret-pw")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "root")
        page.goto(f"{base}/admin/router/journey/")
        row = page.locator("#result_list tbody tr").first
        cells = [c.strip() for c in row.locator("td, th").all_inner_texts()]
        assert "cart" in cells and "active" in cells and "v2" in cells
        # entered, in progress, converted, exited
        assert cells[cells.index("v2") + 1: cells.index("v2") + 5] == ["3", "2", "0", "1"]
        _shots(page, "journey-list")

        page.click("#result_list a:text('cart')")
        page.wait_for_selector("#journey-facts")
        assert page.locator("#journey-status").inner_text() == "active"
        assert "No warnings." in page.locator("#journey-version-2").inner_text()
        assert "wait two days" in page.locator("#journey-version-2").inner_text()
        page.click("#journey-version-1 summary")
        assert '"wait_order"' in page.locator("#journey-version-1 pre").inner_text()
        # the funnel of v1, where the runs are
        page.click("a:text('v1')")
        page.wait_for_selector("#journey-funnel")
        funnel = {r.get_attribute("data-step"): [c.strip() for c in r.locator("td").all_inner_texts()]
                  for r in page.locator("#journey-funnel tbody tr").all()}
        assert funnel["wait_order"][2:4] == ["3", "0"]  # entered 3, waiting none
        assert "event: 1" in funnel["wait_order"][4] and "timeout: 2" in funnel["wait_order"][4]
        assert funnel["email"][2] == "2" and "sent: 2" in funnel["email"][4]
        assert funnel["wait_day"][2:4] == ["2", "2"]
        assert funnel["bought"][2] == "1" and funnel["bought"][6] == "1"  # bea exited there
        assert page.locator("#journey-totals strong").inner_text() == "3"
        assert "2 waiting" in page.locator("#journey-totals").inner_text()
        _shots(page, "journey-detail")

        page.click("#journey-paused")
        page.wait_for_selector(".messagelist")
        assert page.locator("#journey-status").inner_text() == "paused"
        assert Journey.objects.get(pk=cart.pk).status == "paused"
        page.click("#journey-active")
        page.wait_for_selector(".messagelist")
        assert Journey.objects.get(pk=cart.pk).status == "active"

        assert "2 running runs on older versions" in page.locator("#journey-migrate-form").inner_text()
        page.click("#journey-migrate")
        page.wait_for_selector(".messagelist")
        assert "2 running runs moved to v2" in page.locator(".messagelist").inner_text()
        assert set(JourneyRun.objects.filter(state="waiting").values_list("version__version", flat=True)) == {2}
        assert page.locator("#journey-migrate-form").count() == 0


def test_run_list_and_timeline(live_server, cart):
    admin_staff("vera", "CommsViewer")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "vera")
        page.goto(f"{base}/admin/router/journey/{cart.pk}/change/")
        assert page.locator("#journey-paused").count() == 0  # a viewer sees no pause button
        page.click("#journey-runs-link")
        page.wait_for_selector("#result_list")
        assert page.locator("#result_list tbody tr").count() == 3
        page.click("#changelist-filter a:text('Waiting')")
        page.wait_for_selector("#result_list")
        assert page.locator("#result_list tbody tr").count() == 2
        page.fill("#searchbar", "olga")
        page.press("#searchbar", "Enter")
        page.wait_for_selector("#result_list")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1 and "olga" in rows.first.inner_text()
        _shots(page, "journey-runs")

        rows.first.locator("a").first.click()
        page.wait_for_selector("#run-timeline")
        assert page.locator("#run-state").inner_text().startswith("waiting")
        steps = [[c.strip() for c in r.locator("td").all_inner_texts()][2:5]
                 for r in page.locator("#run-timeline tbody tr").all()]
        assert steps == [["wait_order", "wait", "waiting"], ["wait_order", "wait", "timeout"],
                         ["email", "send", "sent"], ["wait_day", "wait", "waiting"]]
        assert page.locator("#run-timeline a.comms-id").count() == 1  # the email's message page
        _shots(page, "journey-run")

        # a viewer cannot post a status change
        status = page.request.post(f"{base}/admin/router/journey/{cart.pk}/status/", data={"status": "paused"})
        assert status.status == 403
        assert Journey.objects.get(pk=cart.pk).status == "active"


def test_simulation_form(live_server, cart):
    get_user_model().objects.create_superuser("root", "root@example.com", "root-secret-pw")
    base = live_server.url
    runs_before = JourneyRun.objects.count()
    with browser_page() as page:
        admin_login(page, base, "root")
        page.goto(f"{base}/admin/router/journey/{cart.pk}/change/")
        page.click("#journey-simulate-link")
        page.wait_for_selector("#simulate-submit")
        page.fill("#id_recipient", "ivan")
        page.fill("#id_events", "[not json")
        page.click("#simulate-submit")
        assert "events: not JSON" in page.locator("#simulate-problems").inner_text()

        events = [{"name": "cart.abandoned", "at": "2026-01-05T10:00:00Z", "payload": {"cart_id": "C9", "total": 5}}]
        page.fill("#id_events", json.dumps(events))
        page.click("#simulate-submit")
        page.wait_for_selector("#simulate-result")
        messages = [[c.strip() for c in r.locator("td").all_inner_texts()]
                    for r in page.locator("#simulate-messages tbody tr").all()]
        assert [(m[1], m[2], m[3]) for m in messages] == [("email", "cart_email", "email")]
        assert messages[0][0].startswith("2026-01-05T11:00")  # after the hour's wait
        path = [[c.strip() for c in r.locator("td").all_inner_texts()][2:5]
                for r in page.locator("#simulate-path tbody tr").all()]
        # no push provider is configured here: the push step is shown blocked, and nothing would be sent
        assert ["opened?", "branch", "push"] in path and ["push", "send", "blocked"] in path
        assert path[-1] == ["done", "exit", "exited"]
        assert "exited" in page.locator("#simulate-state").inner_text()
        _shots(page, "journey-simulate")

        page.fill("#id_outcomes", json.dumps({"email": ["opened"]}))  # had ivan opened it: the SMS branch
        page.click("#simulate-submit")
        page.wait_for_selector("#simulate-result")
        path = [[c.strip() for c in r.locator("td").all_inner_texts()][2:5]
                for r in page.locator("#simulate-path tbody tr").all()]
        assert ["opened?", "branch", "sms"] in path

        page.fill("#id_recipient", "ghost")
        page.click("#simulate-submit")
        assert "COMMS_RECIPIENT_NOT_FOUND" in page.locator("#simulate-problems").inner_text()
    assert JourneyRun.objects.count() == runs_before  # nothing written

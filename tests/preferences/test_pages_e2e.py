"""A person opens the preference center from the unsubscribe link of a real e-mail (caught by the
SMTP sink), changes settings, saves, and the database has them; in headless Chromium."""

from __future__ import annotations

import os
import re

import pytest

from comms.services import recipient_upsert
from delivery.services import SendSpec, drain_all, message_enqueue
from preferences.models import ConsentRecord, QuietHours, UserPreference
from tests.browser import SCREENSHOTS, browser_page

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_preference_center_from_a_real_email(live_server, settings, tenant, smtp_sink):
    settings.COMMS_PUBLIC_URL = live_server.url
    person, _ = recipient_upsert(tenant=tenant, external_id="e2e-1", data={
        "email": "eve@example.com", "timezone": "America/Chicago", "locale": "en-GB"})
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", recipient_id="e2e-1", subject="Your booking",
                                                 body="See you soon", category="booking"))
    drain_all()
    [mail] = smtp_sink.messages
    link = re.sub(r"\s+", "", mail["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{live_server.url}/u/")

    with browser_page() as page:
        page.goto(link)  # what a person gets from the mail client's "unsubscribe" link: a page, no change
        assert page.locator("h1").inner_text() == "Unsubscribe"
        assert "Bookings" in page.locator("main").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "preferences-unsubscribe-confirm.png"), full_page=True)
        assert not UserPreference.objects.filter(recipient=person).exists()

        page.click("text=Manage all preferences")
        page.wait_for_selector("table.prefs")
        assert page.locator("h1").inner_text() == "Notification preferences"
        assert page.is_checked("#pref\\:booking\\:email") and not page.is_checked("#pref\\:promotions\\:email")
        assert page.is_disabled("#pref\\:security\\:email") and page.is_checked("#pref\\:security\\:email")
        page.uncheck("#pref\\:booking\\:email")
        page.check("#pref\\:promotions\\:push")
        page.select_option("#freq-reviews", "weekly_digest")
        page.fill("#quiet_start", "22:30")
        page.fill("#quiet_end", "07:15")
        page.select_option("#timezone", "Europe/Paris")
        page.screenshot(path=str(SCREENSHOTS / "preferences-center-edited.png"), full_page=True)
        page.click("button[value=save]")
        page.wait_for_selector(".alert.ok")
        assert "saved" in page.locator(".alert.ok").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "preferences-center-saved.png"), full_page=True)
        # What the page shows after the reload is what was stored.
        assert not page.is_checked("#pref\\:booking\\:email") and page.is_checked("#pref\\:promotions\\:push")

        page.set_viewport_size({"width": 360, "height": 800})  # a narrow phone, in Spanish
        page.goto(page.url.split("?")[0] + "?lang=es")
        assert page.locator("h1").inner_text() == "Preferencias de notificación"
        page.screenshot(path=str(SCREENSHOTS / "preferences-center-mobile-es.png"), full_page=True)
        page.locator("#h-quiet").locator("xpath=..").screenshot(path=str(SCREENSHOTS / "preferences-quiet-mobile-es.png"))
        # Every control stays inside its card (the time-zone select used to run past the right edge),
        # and the page does not scroll sideways.
        for control in page.locator(".card select, .card input, .card button").all():
            card = control.locator("xpath=ancestor::*[contains(@class, 'card')][1]").bounding_box()
            box = control.bounding_box()
            if box is None:  # hidden
                continue
            assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"], (
                control.get_attribute("id") or control.get_attribute("name"), box, card)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360

    prefs = {(p.channel, p.category): (p.enabled, p.frequency, p.updated_by)
             for p in UserPreference.objects.filter(recipient=person)}
    assert prefs[("email", "booking")][0] is False and prefs[("push", "promotions")][0] is True
    assert prefs[("email", "reviews")][1] == "weekly_digest" and prefs[("email", "booking")][2] == "user"
    quiet = QuietHours.objects.get(recipient=person, category="")
    assert (quiet.start.strftime("%H:%M"), quiet.end.strftime("%H:%M"), quiet.timezone) == ("22:30", "07:15",
                                                                                             "Europe/Paris")
    consent = ConsentRecord.objects.filter(recipient=person, source="preference_center")
    assert {(c.channel, c.category, c.action) for c in consent} >= {("email", "booking", "withdrawn"),
                                                                    ("push", "promotions", "granted")}
    assert all(c.ip == "127.0.0.1" and "Chrom" in c.user_agent for c in consent)

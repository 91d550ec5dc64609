"""The locale coverage table on the template admin and the side-by-side compare page, in headless
Chromium at 1280 and 360 px: flags are visible, changed lines are highlighted, wide lines scroll
inside their box (the page itself never scrolls sideways), and the pages carry no inline script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from templates_app import services
from tests.browser import admin_login, admin_staff, browser_page
from tests.templates_app.fixtures import order_template_data

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path(os.environ.get("COMMS_LOCALE_SHOTS", "/tmp/shots-i20-locale"))

NO_INLINE_SCRIPT = """() => [...document.scripts].every(s => s.src) &&
  ![...document.querySelectorAll('*')].some(el => [...el.attributes].some(a => a.name.startsWith('on')))"""


def _fits(page, selector: str) -> bool:
    """The element ends inside the viewport and the document does not scroll sideways."""
    return page.evaluate("""sel => { const box = document.querySelector(sel).getBoundingClientRect();
        return box.right <= window.innerWidth + 1 && document.documentElement.scrollWidth <= window.innerWidth + 1; }""",
                         selector)


def _shots(page, name: str, selector: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert _fits(page, selector), f"{name} overflows at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_coverage_table_and_side_by_side_compare(live_server, tenant, make_live, editor):
    template = make_live(tenant)
    long_line = "Bestellung {{order.id}} " + "sehr lange Zeile ohne Umbruch " * 12
    german = {**order_template_data()["locales"][1], "sms_text": long_line + "\nVerfolgen: {{order.url}} {{coupon}}"}
    services.template_edit(template=template, actor=editor, data={"locales": [german]})
    tenant.required_locales = {"*": ["en-US"], "sms": ["es"]}
    tenant.save()
    admin_staff("lena", "CommsEditor")
    base = live_server.url
    with browser_page() as page:
        admin_login(page, base, "lena")
        page.goto(f"{base}/admin/templates_app/template/{template.pk}/change/")
        table = page.locator("#locale-coverage")
        caption = table.locator("caption")
        assert "v1 (live)" in caption.inner_text() and caption.locator("a").inner_text() == "compare v1 with v2"
        de_sms = table.locator("tr[data-locale=de] td").nth(1)
        assert de_sms.get_attribute("data-state") == "flagged" and "drops order.url" in de_sms.inner_text()
        assert table.locator("tr[data-locale=en-US] td[data-state=flagged]").count() == 0
        es = table.locator("tr[data-locale=es]")
        assert es.locator("td[data-state=required-missing]").count() == 1  # SMS only: "es" is required for SMS
        assert page.evaluate(NO_INLINE_SCRIPT)
        _shots(page, "coverage", ".lc-box")

        # The live version's German row links to its comparison with the default locale.
        table.locator("tr[data-locale=de] a").click()
        page.wait_for_selector("table.sbs")
        assert page.locator("#content h1").inner_text().endswith("en-US ↔ de (v1)")
        subject = page.locator("section[data-part=subject] table.sbs tbody tr")
        assert subject.count() == 1 and subject.first.get_attribute("class") == "op-replace"
        assert subject.first.locator("td.side.a").inner_text().startswith("Order {{order.id}} confirmed")
        assert subject.first.locator("td.side.b").inner_text() == "Bestellung {{order.id}} bestätigt"
        colour = subject.first.locator("td.side.a").evaluate("td => getComputedStyle(td).backgroundColor")
        assert colour == "rgb(255, 243, 176)"  # changed lines are highlighted
        assert "only in en-US: order.url" in page.locator("#diff-variables").inner_text()
        # Both sides of the long MJML are on screen at desktop width: long lines wrap inside their half.
        right = page.locator("section[data-part=body_html] td.side.b").first.bounding_box()
        assert right and right["x"] + right["width"] <= 1280 and right["width"] > 400
        assert page.evaluate(NO_INLINE_SCRIPT)
        _shots(page, "locale-diff", "#content")

        # Two versions of one template, German only, picked with the form.
        page.select_option("select[name=a]", "v1")
        page.select_option("select[name=b]", "v2")
        page.click("#diff-pick button")
        page.wait_for_selector("section[data-locale=de][data-part=sms_text] table.sbs")
        assert page.locator("#content h1").inner_text().endswith("v1 ↔ v2")
        sms = page.locator("section[data-locale=de][data-part=sms_text]")
        assert [r.get_attribute("class") for r in sms.locator("tbody tr").all()] == ["op-replace", "op-insert"]
        assert page.locator("section[data-locale=en-US][data-part=subject] .sbs-unchanged").count() == 1
        page.set_viewport_size({"width": 360, "height": 900})
        box = sms.locator(".sbs-box")
        assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # the long line scrolls inside its box
        _shots(page, "version-diff", "#content")

        # A side that does not exist is said on the page, not a server error.
        response = page.goto(f"{base}/admin/templates_app/template/{template.pk}/locales/diff/?a=v1&b=ja")
        assert response.status == 200
        assert "neither" not in page.locator("#diff-error").inner_text()
        assert "not one of each" in page.locator("#diff-error").inner_text()
        page.goto(f"{base}/admin/templates_app/template/{template.pk}/locales/diff/?a=en-US&b=ja")
        assert "has no locale 'ja'" in page.locator("#diff-error").inner_text()
        page.screenshot(path=str(SHOTS / "locale-diff-error-1280.png"), full_page=True)

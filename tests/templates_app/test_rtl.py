"""Right-to-left locales: dir/lang on the email root, mirrored MJML defaults, direction marks on text."""

from __future__ import annotations

import pytest

from templates_app import bidi, rendering, services, sms_encoding
from templates_app.services.render import RenderContext, pick_locale, render_channel
from tests.browser import SCREENSHOTS, browser_page
from tests.templates_app.rtl_fixtures import rtl_template_data

RLM = "\u200f"


@pytest.mark.parametrize("locale", ["ar", "ar-EG", "ar_SA", "he", "he-IL", "fa", "fa-IR", "ur", "ur-PK", "iw"])
def test_rtl_locales_include_region_variants(locale):
    assert bidi.is_rtl(locale) and bidi.direction(locale) == "rtl"


@pytest.mark.parametrize("locale", ["en-US", "de", "fr-CA", "ru", "", "xx-bogus"])
def test_ltr_and_unknown_locales(locale):
    assert not bidi.is_rtl(locale)


@pytest.fixture
def version(tenant, editor):
    return services.template_create(tenant=tenant, actor=editor, user=editor, data=rtl_template_data()).versions.get()


def _render(version, locale: str, channel: str):
    return render_channel(RenderContext(version, pick_locale(version, locale), None, version.sample_variables), channel)


@pytest.mark.django_db
def test_arabic_email_has_rtl_root_mirrored_columns_and_right_aligned_text(version):
    html = _render(version, "ar-EG", "email").body_html
    assert '<html lang="ar-EG"' in html and 'dir="rtl"' in html.split(">", 2)[1] + html.split("<html", 1)[1][:200]
    assert '<body' in html and 'dir="rtl"' in html[html.index("<body"):html.index(">", html.index("<body"))]
    assert "direction:rtl" in html.replace(" ", "")  # sections and columns flow right to left
    assert "text-align:right" in html.replace(" ", "") and "text-align:left" not in html.replace(" ", "")


@pytest.mark.django_db
def test_english_email_names_its_language_and_stays_left_to_right(version):
    html = _render(version, "en-US", "email").body_html
    assert '<html lang="en-US"' in html and 'dir="ltr"' in html[:html.index(">", html.index("<html"))]
    assert "text-align:right" not in html.replace(" ", "")


def test_the_authors_own_alignment_and_dir_win():
    source = ('<mjml dir="ltr"><mj-head><mj-attributes><mj-text align="center" /></mj-attributes></mj-head>'
              '<mj-body><mj-section><mj-column><mj-text>x</mj-text><mj-text align="left">y</mj-text>'
              '</mj-column></mj-section></mj-body></mjml>')
    html = bidi.html_direction(rendering.compile_mjml(bidi.mjml_direction(source, "he")), "he", source=source)
    flat = html.replace(" ", "")
    assert "text-align:center" in flat and "text-align:left" in flat and "text-align:right" not in flat
    assert 'dir="ltr"' in html[:html.index(">", html.index("<html"))]  # <mjml dir="ltr"> kept (mrml drops it)
    rtl = source.replace('dir="ltr"', "")  # now the locale decides; the author's mj-text default still wins
    flat = bidi.html_direction(rendering.compile_mjml(bidi.mjml_direction(rtl, "he")), "he", source=rtl)
    assert "text-align:center" in flat.replace(" ", "") and "direction:rtl" in flat.replace(" ", "")
    plain = bidi.html_direction(rendering.compile_mjml('<html dir="ltr"><body><p>שלום</p></body></html>'), "he")
    assert plain.startswith('<html dir="ltr" lang="he">')  # the author's dir kept, lang added


def test_marks_only_where_the_first_strong_character_is_left_to_right():
    assert bidi.mark_text("Acme: طلبك", "ar") == RLM + "Acme: طلبك"
    assert bidi.mark_text("طلبك Acme", "ar") == "طلبك Acme"  # already right to left: no mark
    assert bidi.mark_text("1234", "ar") == "1234"  # nothing strong: nothing to fix
    assert bidi.mark_text("Acme: x\nطلبك\nID 5", "he") == f"{RLM}Acme: x\nطلبك\n{RLM}ID 5"  # per paragraph
    assert bidi.mark_text("Acme: x", "en-US") == "Acme: x"


@pytest.mark.django_db
def test_sms_mark_counts_in_segments_and_never_turns_gsm7_into_ucs2(version):
    out = _render(version, "ar-EG", "sms")
    assert out.body.startswith(RLM + "Acme:") and "\nشكراً" in out.body and out.body.count(RLM) == 1
    assert out.sms.encoding == "UCS-2" and out.sms.units == len(out.body)  # the mark is counted
    latin = "Acme: order A-1001 confirmed"
    assert bidi.mark_sms(latin, "ar-EG") == latin
    assert sms_encoding.sms_segments(latin).encoding == "GSM-7"


@pytest.mark.django_db
def test_push_in_app_and_subject_get_marks_links_do_not(version):
    push = _render(version, "ar-EG", "push")
    assert push.subject == RLM + "Acme" and push.body == "طلبك A-1001"
    in_app = _render(version, "ar-EG", "in_app")
    assert in_app.data["title"] == RLM + "Acme" and in_app.data["body"] == "طلبك"
    assert in_app.data["link"] == "https://shop.example.com/o/A-1001"
    assert _render(version, "ar-EG", "email").subject == RLM + "Acme: طلبك A-1001"
    assert _render(version, "en-US", "email").subject == "Order A-1001"


@pytest.mark.django_db
def test_chromium_lays_the_arabic_email_out_right_to_left(version):
    html = _render(version, "ar-EG", "email").body_html
    with browser_page() as page:
        page.set_viewport_size({"width": 800, "height": 600})
        page.set_content(html)
        page.screenshot(path=str(SCREENSHOTS / "rtl-arabic-email.png"))
        greeting = page.locator(".greeting div").first
        assert greeting.evaluate("e => getComputedStyle(e).direction") == "rtl"
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        # The text's own box (a Range over it, not the block) hugs the right edge of its column.
        text_box, column_box = greeting.evaluate("""e => {
            const r = document.createRange(); r.selectNodeContents(e);
            const t = r.getBoundingClientRect(), c = e.getBoundingClientRect();
            return [[t.left, t.right], [c.left, c.right]]; }""")
        assert abs(text_box[1] - column_box[1]) <= 2 and text_box[0] - column_box[0] > 50
        # Mirrored columns: the first column (greeting) sits to the right of the second.
        side = page.locator(".side div").first.bounding_box()
        assert greeting.bounding_box()["x"] > side["x"]

"""Rendering rules: helpers, escaping, URL safety, SMS segments, locale fallback, variants."""

from __future__ import annotations

import re

import pytest

from comms import errors
from templates_app import rendering, services, sms_encoding
from templates_app.services.render import RenderContext, locale_chain, pick_locale, pick_variant, render_channel
from tests.templates_app.fixtures import order_template_data, variables

pytestmark = pytest.mark.django_db
XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)",
       "JaVaScRiPt:alert(1)", "&#106;avascript:alert(1)", " javascript:alert(1)", "data:text/html,<script>"]


def _version(tenant, editor, **extra):
    template = services.template_create(tenant=tenant, actor=editor, user=editor, data=order_template_data(**extra))
    return template.versions.get()


def test_email_renders_mjml_with_inlined_css_helpers_and_text_part(tenant, editor):
    version = _version(tenant, editor)
    row = pick_locale(version, "en-US")
    out = render_channel(RenderContext(version, row, None, variables()), "email")
    assert out.subject == "Order A-1001 confirmed, Ada"
    assert "Hello Ada," in out.body_html
    assert "Mar 05, 2026" in out.body_html  # "MMM DD, YYYY" from the seed
    assert "€1,234.50" in out.body_html and "€10.00" in out.body_html
    assert "3 items" in out.body_html
    assert "It arrives in 3-5 business days." in out.body_html and "tomorrow" not in out.body_html
    assert 'style="' in out.body_html and "font-weight: bold" in out.body_html  # CSS inlined
    assert "<mj-" not in out.body_html
    assert "Hello Ada," in out.body and "[Track your order](https://shop.example.com/o/A-1001)" in out.body
    assert "No note." in out.body
    assert out.problems == []


def test_same_template_across_locales(tenant, editor):
    version = _version(tenant, editor)
    german = render_channel(RenderContext(version, pick_locale(version, "de-DE"), None, variables()), "email")
    assert german.subject == "Bestellung A-1001 bestätigt"
    assert "Hallo Ada" in german.body_html
    assert "1.234,50\xa0€" in german.body_html  # de number and currency conventions
    assert "05.03.2026" not in german.body_html and "März 05, 2026" in german.body_html
    french = pick_locale(version, "fr-CA")
    assert french.locale == "en-US"  # fr-CA → fr → template default en-US


def test_locale_chain_per_seed():
    assert locale_chain("es-MX", "pt-BR") == ["es-MX", "es", "pt-BR", "en-US"]
    assert locale_chain("", "en-US") == ["en-US"]


@pytest.mark.parametrize("payload", XSS)
def test_every_variable_is_escaped_and_urls_are_checked(tenant, editor, payload):
    version = _version(tenant, editor)
    data = variables(note=payload)
    data["user"]["first_name"] = payload
    data["order"]["url"] = payload
    data["items"][0]["name"] = payload
    out = render_channel(RenderContext(version, pick_locale(version, "en-US"), None, data), "email")
    html = out.body_html.lower()
    assert "<script" not in html and "<img src=x" not in html
    assert not re.search(r"<[a-z]+[^>]*\sonerror=", html)  # only ever present as escaped text
    for match in rendering._URL_ATTR.finditer(out.body_html):
        probe = match.group(3).replace(" ", "").lower()
        assert not probe.startswith(("javascript", "&#106;", "data:")), match.group(0)
    # Text channels are not HTML: they carry the text as typed.
    sms = render_channel(RenderContext(version, pick_locale(version, "en-US"), None, data), "sms")
    assert payload.strip() in sms.body


def test_triple_stash_and_raw_need_a_trusted_template(tenant, editor):
    with pytest.raises(errors.TemplateInvalid) as err:
        _version(tenant, editor, template_key="raw1", locales=[{"locale": "en-US", "body_html": "<p>{{{x}}}</p>"}])
    assert err.value.details["line"] == 1 and err.value.details["part"] == "body_html"
    with pytest.raises(errors.TemplateInvalid):
        _version(tenant, editor, template_key="raw2", locales=[{"locale": "en-US", "body_html": "<p>{{raw x}}</p>"}])


def test_trusted_flag_needs_the_permission(tenant, editor):
    with pytest.raises(errors.Forbidden):
        _version(tenant, editor, template_key="trusted1", trusted=True)


def test_malformed_handlebars_and_mjml_report_line_and_column(tenant, editor):
    with pytest.raises(errors.TemplateInvalid) as err:
        _version(tenant, editor, template_key="bad1",
                 locales=[{"locale": "en-US", "subject": "ok", "sms_text": "line one\nHello {{#if x}}unclosed"}])
    assert (err.value.details["part"], err.value.details["line"], err.value.details["column"]) == ("sms_text", 2, 7)
    with pytest.raises(errors.TemplateInvalid) as err:
        _version(tenant, editor, template_key="bad2",
                 locales=[{"locale": "en-US", "body_html": "<mjml><mj-body><mj-section></mj-body></mjml>"}])
    assert "MJML" in err.value.message
    from templates_app.models import Template

    assert not Template.objects.filter(template_key__in=["bad1", "bad2"]).exists()  # nothing saved


def test_sms_segments_gsm7_and_ucs2():
    assert sms_encoding.sms_segments("a" * 160) == sms_encoding.SmsInfo("GSM-7", 160, 1)
    assert sms_encoding.sms_segments("a" * 161).segments == 2
    assert sms_encoding.sms_segments("€" * 80).units == 160  # extension characters count twice
    assert sms_encoding.sms_segments("ü" * 70) == sms_encoding.SmsInfo("GSM-7", 70, 1)  # ü is in GSM-7
    assert sms_encoding.sms_segments("ç" * 70).encoding == "UCS-2"  # ç is not (only Ç is)
    assert sms_encoding.sms_segments("😀" * 35) == sms_encoding.SmsInfo("UCS-2", 70, 1)
    assert sms_encoding.sms_segments("中" * 71).segments == 2
    truncated = sms_encoding.truncate_sms("word " * 200, 2)
    assert sms_encoding.sms_segments(truncated).segments == 2 and truncated.endswith("…")


def test_sms_over_the_cap_is_refused_or_truncated(tenant, editor):
    long_sms = [{"locale": "en-US", "sms_text": "{{note}}"}]
    refuse = _version(tenant, editor, template_key="sms1", channels=["sms"], locales=long_sms, sms_segment_cap=1,
                      variables_schema={"type": "object"})
    out = render_channel(RenderContext(refuse, pick_locale(refuse, ""), None, {"note": "x" * 200}), "sms")
    assert out.problems == ["SMS needs 2 segments; the cap is 1"]
    cut = _version(tenant, editor, template_key="sms2", channels=["sms"], locales=long_sms, sms_segment_cap=1,
                   sms_overflow="truncate", variables_schema={"type": "object"})
    out = render_channel(RenderContext(cut, pick_locale(cut, ""), None, {"note": "x" * 200}), "sms")
    assert out.sms.segments == 1 and out.problems[0].startswith("warning: SMS truncated")


def test_missing_and_mistyped_variables(tenant, editor):
    version = _version(tenant, editor)
    data = variables()
    del data["order"]["url"]
    with pytest.raises(errors.TemplateMissingVar) as err:
        services.check_variables(version, data)
    assert err.value.details == {"variable": "order.url"} and "order.url" in err.value.message
    with pytest.raises(errors.TemplateBadVar) as err:
        services.check_variables(version, variables(order={**variables()["order"], "total": "lots"}))
    assert err.value.details["variable"] == "order.total"


def test_referenced_variables_outside_loops():
    source = ('{{user.name}} {{#each items}}{{this.name}} {{price}}{{/each}} {{formatDate when "YYYY"}} '
              '{{#if (eq kind "a")}}x{{/if}} {{default note "n"}} {{@index}}')
    assert rendering.referenced_variables(source) == {"user", "items", "when", "kind", "note"}


def test_variant_bucketing_is_sticky_and_follows_weights(tenant, editor):
    version = _version(tenant, editor, experiment={"name": "subject-test", "variants": [
        {"key": "A", "weight": 70, "subject": "A: {{order.id}}"}, {"key": "B", "weight": 30, "subject": "B"}]})
    picks = [pick_variant(version, f"user-{i}")["key"] for i in range(10_000)]
    share_a = picks.count("A") / len(picks)
    assert 0.68 <= share_a <= 0.72
    assert [pick_variant(version, f"user-{i}")["key"] for i in range(200)] == picks[:200]  # sticky
    out = render_channel(RenderContext(version, pick_locale(version, ""), {"key": "A", "subject": "A: {{order.id}}"},
                                       variables()), "email")
    assert out.subject == "A: A-1001"


def test_date_pattern_translation():
    assert rendering.moment_to_ldml("MMM DD, YYYY") == "MMM dd, yyyy"
    assert rendering.moment_to_ldml("dddd [at] HH:mm") == "EEEE 'at' HH:mm"


def test_fast_currency_formatting_equals_babel():
    from decimal import Decimal

    from babel.numbers import format_currency

    locales = ["en-US", "de-DE", "fr-FR", "en-IN", "ja-JP", "ar-EG", "pt-BR", "de-CH", "nl-NL", "he-IL", "es-MX",
               "sv-SE", "hi-IN", "fa-IR", "zh-CN", "ru-RU"]
    currencies = ["USD", "EUR", "JPY", "INR", "CHF", "KWD", "BRL", "SEK"]
    values = ["0", "1", "-1", "1234.5", "1234567.891", "0.005", "0.015", "-99999.995", "12345678901.2", "-0"]
    for locale in locales:
        for currency in currencies:
            for value in values:
                expected = format_currency(Decimal(value), currency, locale=rendering.babel_locale(locale))
                assert rendering.fast_currency(Decimal(value), currency, locale) == expected, (locale, currency, value)

"""CLDR plural categories through the ``plural`` Handlebars helper (Babel's rules, issue 20)."""

from __future__ import annotations

import pytest

from templates_app import rendering
from templates_app.plurals import plural_category
from templates_app.helpers import babel_locale

ALL = 'zero="Z#" one="O#" two="T#" few="F#" many="M#" other="X#"'


def render(source: str, locale: str, **variables) -> str:
    fn = rendering.compile_handlebars(rendering.as_text_source(source), part="sms_text")
    return rendering.render_part(fn, variables, rendering.make_helpers(locale, "UTC", trusted=False))


@pytest.mark.parametrize("count,expected", [
    (1, "1 товар"), (21, "21 товар"), (101, "101 товар"),
    (2, "2 товара"), (3, "3 товара"), (22, "22 товара"), (104, "104 товара"),
    (0, "0 товаров"), (5, "5 товаров"), (11, "11 товаров"), (12, "12 товаров"), (111, "111 товаров"),
    ("1.5", "1,5 товара (other)"), (1000, "1\xa0000 товаров"),
])
def test_russian_one_few_many_other(count, expected):
    source = ('{{plural n one="# товар" few="# товара" many="# товаров" other="# товара (other)"}}')
    assert render(source, "ru", n=count) == expected


@pytest.mark.parametrize("count,category", [
    (0, "Z"), (1, "O"), (2, "T"), (3, "F"), (10, "F"), (103, "F"), (11, "M"), (99, "M"), (111, "M"),
    (100, "X"), (101, "X"), (102, "X"), ("0.5", "X"),
])
def test_arabic_uses_all_six_categories(count, category):
    assert render("{{plural n " + ALL + "}}", "ar-EG", n=count).startswith(category)


@pytest.mark.parametrize("count,expected", [
    (1, "1 plik"), (2, "2 pliki"), (4, "4 pliki"), (22, "22 pliki"), (5, "5 plików"), (12, "12 plików"),
    (14, "14 plików"), (21, "21 plików"), (0, "0 plików"), ("2.5", "2,5 pliku"),
])
def test_polish(count, expected):
    source = '{{plural n one="# plik" few="# pliki" many="# plików" other="# pliku"}}'
    assert render(source, "pl", n=count) == expected


@pytest.mark.parametrize("count,expected", [(1, "1 item"), (0, "0 items"), (2, "2 items"), (1.0, "1 item"),
                                            ("1.0", "1.0 items"), (1234, "1,234 items"), (-1, "-1 item")])
def test_english_one_other(count, expected):
    assert render('{{plural n one="# item" other="# items"}}', "en-US", n=count) == expected


def test_a_category_the_author_did_not_write_falls_back_to_other():
    # Russian 5 is "many"; only one/other were written.
    assert render('{{plural n one="# file" other="# files"}}', "ru", n=5) == "5 files"
    # en has no "zero" category: zero= is never chosen, 0 is other (CLDR), so the text is other's.
    assert render('{{plural n zero="none" one="one" other="#"}}', "en", n=0) == "0"


def test_html_escapes_the_chosen_text_and_reads_nested_variables():
    fn = rendering.compile_handlebars('<p>{{plural cart.count one="# <b>item</b>" other="# items"}}</p>',
                                      part="body_html")
    out = rendering.render_part(fn, {"cart": {"count": 1}}, rendering.make_helpers("en", "UTC", trusted=False))
    assert out == "<p>1 &lt;b&gt;item&lt;/b&gt;</p>"


@pytest.mark.parametrize("variables,message", [
    ({"n": "lots"}, "the count must be a number, got 'lots'"),
    ({}, "got nothing (is the variable missing?)"),
    ({"n": True}, "the count must be a number"),
    ({"n": [1, 2]}, "got list"),
    ({"n": "NaN"}, "the count must be a number"),
])
def test_a_count_that_is_not_a_number_is_a_typed_render_error(variables, message):
    from comms import errors

    with pytest.raises(errors.TemplateRenderFailed) as caught:
        render('{{plural n one="#" other="#"}}', "ru", **variables)
    assert caught.value.code == "COMMS_TEMPLATE_RENDER" and message in caught.value.message


def test_other_is_required_and_unknown_categories_are_named():
    from comms import errors

    with pytest.raises(errors.TemplateRenderFailed, match=r'other="…" is required'):
        render('{{plural n one="#"}}', "en", n=1)
    with pytest.raises(errors.TemplateRenderFailed, match="unknown category single"):
        render('{{plural n single="#" other="#"}}', "en", n=1)


def test_category_matches_babel_for_every_locale_it_knows():
    # The helper is Babel's CLDR data, not a table of ours: spot-check a few more plural systems.
    assert plural_category(2, babel_locale("cy")) == "two"  # Welsh
    assert plural_category(1, babel_locale("ja")) == "other"  # no plural forms at all
    assert plural_category(2, babel_locale("sl")) == "two"  # Slovenian dual


def test_plural_is_a_helper_not_a_variable_for_the_schema_check():
    assert rendering.referenced_variables('{{plural cart.count one="# item" other="# items"}}') == {"cart"}


@pytest.mark.django_db
def test_a_bad_count_in_a_preview_answers_422_not_500(admin_api):
    from tests.templates_app.fixtures import order_template_data

    data = order_template_data(channels=["sms"], variables_schema={}, sample_variables={})
    data["locales"] = [{"locale": "ru", "sms_text": '{{plural n one="# заказ" few="# заказа" other="# заказов"}}'}]
    data["default_locale"] = "ru"
    assert admin_api.post("/api/v1/templates", data, format="json").status_code == 201
    ok = admin_api.post("/api/v1/templates/order_confirmation/preview", {"variables": {"n": 3}}, format="json")
    assert ok.json()["channels"]["sms"]["text"] == "3 заказа"
    bad = admin_api.post("/api/v1/templates/order_confirmation/preview", {"variables": {"n": "x"}}, format="json")
    assert bad.status_code == 422 and bad.json()["code"] == "COMMS_TEMPLATE_RENDER"
    assert "plural: the count must be a number" in bad.json()["message"]

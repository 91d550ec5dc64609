"""CLDR plural rules for every locale: the ``plural`` Handlebars helper.

``pluralize`` (helpers.py) knows one/other, which is English. Russian and Polish need one/few/many,
Arabic zero/one/two/few/many/other: the categories and the rules that pick them are CLDR's
(https://cldr.unicode.org/index/cldr-spec/plural-rules), read through Babel's ``Locale.plural_form``.
The syntax follows ICU MessageFormat's plural argument: one text per category, ``#`` stands for the
formatted number, and ``other`` is required because every CLDR locale has it (ICU requires it too)::

    {{plural count one="# товар" few="# товара" many="# товаров" other="# товара"}}

A category the author did not write falls back to ``other``. A count that is not a number is a
render error naming the helper, never a guess (and never a 500).
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable

import pybars
from babel import Locale
from babel.numbers import NumberPattern, parse_pattern

CATEGORIES = ("zero", "one", "two", "few", "many", "other")


class PluralError(pybars.PybarsError):
    """Raised inside rendering; ``rendering.render_part`` turns it into COMMS_TEMPLATE_RENDER."""


def plural_operand(count: Any) -> int | Decimal:
    """The number CLDR's operands are computed from.

    A string keeps its visible fraction digits ("1.0" is ``other`` in English, as CLDR says);
    a float that is whole counts as an integer, since JSON clients send 1.0 for 1.
    """
    if isinstance(count, bool) or count is None:
        raise PluralError(f"plural: the count must be a number, got {_shown(count)}")
    if isinstance(count, int):
        return count
    if isinstance(count, float):
        if count != count or count in (float("inf"), float("-inf")):
            raise PluralError(f"plural: the count must be a finite number, got {count}")
        return int(count) if count.is_integer() else Decimal(repr(count))
    if isinstance(count, Decimal):
        return count
    if isinstance(count, str):
        try:
            number = Decimal(count.strip())
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    raise PluralError(f"plural: the count must be a number, got {_shown(count)}")


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (is the variable missing?)"
    if isinstance(value, str):
        return repr(value[:40])
    return type(value).__name__


def plural_category(count: Any, locale: Locale) -> str:
    """CLDR category (zero/one/two/few/many/other) of ``count`` in ``locale``."""
    return locale.plural_form(abs(plural_operand(count)))


def choose(count: Any, locale: Locale, forms: dict[str, Any]) -> str:
    """The author's text for the count's category (``other`` when that category is not written),
    with ``#`` replaced by the count formatted for the locale."""
    unknown = sorted(set(forms) - set(CATEGORIES))
    if unknown:
        raise PluralError(f"plural: unknown categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} "
                          f"(CLDR has {', '.join(CATEGORIES)})")
    if "other" not in forms:
        raise PluralError('plural: other="…" is required (every locale uses it)')
    number = plural_operand(count)
    category = locale.plural_form(abs(number))
    text = forms.get(category, forms["other"])
    text = "" if text is None else str(text)
    return text.replace("#", format_count(number, locale)) if "#" in text else text


@lru_cache(maxsize=256)
def _decimal_pattern(locale: Locale) -> NumberPattern:
    return parse_pattern(locale.decimal_formats[None])


def format_count(number: int | Decimal, locale: Locale) -> str:
    """The count as the locale writes it, keeping the fraction digits the category was chosen on:
    "1.0" chose ``other`` in English, so it must print as "1.0", not "1" (Babel's default drops them)."""
    digits = max(0, -number.as_tuple().exponent) if isinstance(number, Decimal) else 0
    pattern = _decimal_pattern(locale)
    if digits:
        pattern = copy.copy(pattern)
        pattern.frac_prec = (digits, max(digits, pattern.frac_prec[1]))
    return pattern.apply(number, locale, decimal_quantization=False)


def make_plural_helper(locale: Locale) -> Callable:
    """The ``plural`` helper bound to one locale (helpers are built per render locale)."""

    def plural(this, count=None, *args, **forms):
        if args:
            raise PluralError("plural takes one count and named forms: {{plural n one=\"…\" other=\"…\"}}")
        return choose(count, locale, forms)

    return plural

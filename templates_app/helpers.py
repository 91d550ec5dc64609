"""Handlebars helpers (locale-aware numbers, currency, dates, plurals, safe URLs) for rendering.

Split from rendering.py; ``templates_app.rendering`` re-exports every public name here.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone as dt_timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo

from comms.links import SAFE_SCHEMES, safe_link, safe_url  # noqa: F401  (one link policy for every channel)

import pybars
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    parse_pattern,
)

from templates_app.plurals import make_plural_helper



# --- helpers ----------------------------------------------------------------------------------------------

_MOMENT = re.compile(r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|DDDD|DD|D|dddd|ddd|HH|H|hh|h|mm|m|ss|s|A|a|Z|.", re.S)
_MOMENT_TO_LDML = {"YYYY": "yyyy", "YY": "yy", "MMMM": "MMMM", "MMM": "MMM", "MM": "MM", "M": "M", "DD": "dd",
                   "D": "d", "dddd": "EEEE", "ddd": "EEE", "HH": "HH", "H": "H", "hh": "hh", "h": "h", "mm": "mm",
                   "m": "m", "ss": "ss", "s": "s", "A": "a", "a": "a", "Z": "xxx", "DDDD": "D"}


def moment_to_ldml(pattern: str) -> str:
    """The seed writes dates moment-style ("MMM DD, YYYY"); Babel speaks CLDR/LDML ("MMM dd, yyyy")."""
    out = []
    for token in _MOMENT.findall(pattern):
        if token in _MOMENT_TO_LDML:
            out.append(_MOMENT_TO_LDML[token])
        elif token.startswith("["):
            out.append("'" + token[1:-1].replace("'", "''") + "'")
        elif token.isalpha():
            out.append(f"'{token}'")
        elif token == "'":
            out.append("''")
        else:
            out.append(token)
    return "".join(out)


def _to_datetime(value: Any) -> datetime | date | None:
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=dt_timezone.utc)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en_US")


@lru_cache(maxsize=1024)
def _currency_format(locale: str, currency: str):
    """Babel's currency pattern for (locale, currency), pre-resolved once.

    ``babel.numbers.format_currency`` re-resolves pattern, symbols and currency names on every
    call (~70 µs); an order with ten prices paid that ten times per recipient. The result is
    checked against Babel itself in tests/templates_app/test_rendering.py.
    """
    loc = babel_locale(locale)
    pattern = parse_pattern(loc.currency_formats["standard"])
    if "¤¤¤" in pattern.pattern or "@" in pattern.pattern or pattern.exp_prec:
        return None  # unusual patterns: let Babel do it

    def finish(text: str) -> str:
        text = text.replace("¤¤", currency.upper()).replace("¤", get_currency_symbol(currency, loc))
        return re.sub(r"'([^']*)'", lambda m: m.group(1) or "'", text)

    digits = get_currency_precision(currency)
    return ((finish(pattern.prefix[0]), finish(pattern.prefix[1])), (finish(pattern.suffix[0]),
            finish(pattern.suffix[1])), pattern.grouping, pattern.int_prec[0], digits,
            get_decimal_symbol(loc), get_group_symbol(loc))


def fast_currency(amount: Decimal, currency: str, locale: str) -> str:
    fmt = _currency_format(locale, currency)
    if fmt is None:
        return format_currency(amount, currency, locale=babel_locale(locale))
    prefix, suffix, (primary, secondary), min_int, digits, decimal_symbol, group_symbol = fmt
    quantized = amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
    negative = quantized < 0 or (quantized == 0 and quantized.is_signed())
    integer, _, fraction = f"{abs(quantized):f}".partition(".")
    integer = integer.rjust(min_int, "0")
    grouped, size = "", primary
    while len(integer) > size:
        grouped = group_symbol + integer[-size:] + grouped
        integer, size = integer[:-size], secondary
    number = integer + grouped + (decimal_symbol + fraction.ljust(digits, "0") if digits else "")
    return prefix[negative] + number + suffix[negative]


def make_helpers(locale: str, tz: str, *, trusted: bool) -> dict[str, Callable]:
    loc = babel_locale(locale)
    zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")

    def format_currency_helper(this, amount, currency="USD", *args, **kwargs):
        if not _printable(amount, currency):
            return ""
        try:
            return fast_currency(Decimal(str(amount)), str(currency), locale)
        except (InvalidOperation, ValueError, TypeError):
            return str(amount)

    def format_number_helper(this, number, *args, **kwargs):
        if not _printable(number):
            return ""
        try:
            return format_decimal(Decimal(str(number)), locale=loc)
        except (InvalidOperation, ValueError, TypeError):
            return str(number)

    def format_date_helper(this, value, pattern="medium", *args, **kwargs):
        if not _printable(value, pattern):
            return ""
        moment = _to_datetime(value)
        if moment is None:
            return str(value or "")
        fmt = pattern if pattern in ("short", "medium", "long", "full") else moment_to_ldml(str(pattern))
        if isinstance(moment, datetime):
            if moment.tzinfo is not None:
                moment = moment.astimezone(zone)
            return format_datetime(moment, fmt, locale=loc)
        return format_date(moment, fmt, locale=loc)

    def pluralize(this, count, singular, plural=None, *args, **kwargs):
        try:
            one = float(count) == 1
        except (TypeError, ValueError):
            one = False
        return singular if one else (plural if plural is not None else f"{singular}s")

    def default(this, value, fallback="", *args, **kwargs):
        return fallback if value in (None, "", [], {}) else value

    def eq(this, left, right, *args, **kwargs):
        return left == right or (left is not None and right is not None and str(left) == str(right))

    helpers = {"formatCurrency": format_currency_helper, "formatDate": format_date_helper,
               "safeUrl": lambda this, value, *a, **k: safe_url(value) if _printable(value) else "",
               "formatNumber": format_number_helper, "pluralize": pluralize, "default": default, "eq": eq}
    helpers["plural"] = make_plural_helper(loc)  # CLDR categories for every locale (templates_app/plurals.py)
    if trusted:
        helpers["raw"] = lambda this, value, *a, **k: pybars.strlist([str(value) if _printable(value) else ""])
    return helpers


def _printable(*values: Any) -> bool:
    """Helpers print text, numbers and dates; an object or a list given to them prints nothing
    (str() of it would print every variable it holds)."""
    return all(v is None or isinstance(v, (str, int, float, Decimal, date, datetime)) for v in values)



"""A structured side-by-side diff of two locales of one version, or of two versions (one locale or all).

The API returns it as JSON and the admin's compare page draws it in two columns; both read the
same rows, so what a reviewer sees is what a script sees. Lines are matched with difflib's
SequenceMatcher (its opcodes are the rows' ``op``).
"""

from __future__ import annotations

import difflib
from typing import Any

from templates_app.locales import (
    DiffInvalid,
    TemplateLocaleUnknown,
    parse_side,
    pick_version,
    localised_channels,
    row_variables,
)
from templates_app.models import Template, TemplateLocale, TemplateVersion
from templates_app.version_diff import LOCALE_PARTS, VERSION_PARTS, _lines


def side_by_side(left: list[str], right: list[str]) -> list[dict]:
    """Rows {op, a_line, a, b_line, b}; a replaced block of unequal length is padded with nulls."""
    rows: list[dict] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            a = left[i] if i < i2 else None
            b = right[j] if j < j2 else None
            rows.append({"op": op if (a is not None and b is not None) or op != "replace"
                         else ("delete" if b is None else "insert"),
                         "a_line": i + 1 if a is not None else None, "a": a,
                         "b_line": j + 1 if b is not None else None, "b": b})
    return rows


def _part(label: str, left: Any, right: Any, **where: Any) -> dict:
    a, b = _lines(left), _lines(right)
    return {"part": label, **where, "changed": a != b, "rows": side_by_side(a, b)}


def _shown(parts: list[dict]) -> list[dict]:
    """Parts empty on both sides (no SMS text in either locale) are left out."""
    return [p for p in parts if p["rows"]]


def _row(version: TemplateVersion, locale: str) -> TemplateLocale:
    rows = {r.locale.lower(): r for r in version.locales.all()}
    row = rows.get(locale.lower())
    if row is None:
        raise TemplateLocaleUnknown(
            f"v{version.version} of '{version.template.template_key}' has no locale {locale!r}.",
            details={"locale": locale, "version": version.version,
                     "locales": sorted(r.locale for r in rows.values())})
    return row


def _variables(template: Template, a: TemplateLocale | None, b: TemplateLocale | None) -> dict:
    out = {}
    for channel in localised_channels(template):
        left = row_variables(a, channel) if a is not None else set()
        right = row_variables(b, channel) if b is not None else set()
        out[channel] = {"only_a": sorted(left - right), "only_b": sorted(right - left), "both": sorted(left & right)}
    return out


def locale_diff(template: Template, *, a: str, b: str, version: Any = None, locale: str = "") -> dict:
    """Diff two sides given as query tokens: two locales (of ``version``, default the active one) or
    two versions (every locale, or only ``locale``). Unknown sides are typed 404s, mixed sides a 400."""
    kind_a, value_a = parse_side(a)
    kind_b, value_b = parse_side(b)
    if kind_a != kind_b:
        raise DiffInvalid("Compare a locale with a locale or a version with a version, not one of each.",
                          details={"a": a, "b": b})
    if kind_a == "locale":
        shown = pick_version(template, version)
        row_a, row_b = _row(shown, value_a), _row(shown, value_b)
        parts = [_part(field, getattr(row_a, field), getattr(row_b, field)) for field in LOCALE_PARTS]
        return {"template": template.template_key, "mode": "locale",
                "a": {"version": shown.version, "locale": row_a.locale},
                "b": {"version": shown.version, "locale": row_b.locale},
                "variables": _variables(template, row_a, row_b), "parts": _shown(parts)}
    ver_a, ver_b = pick_version(template, value_a), pick_version(template, value_b)
    parts = [_part(field, getattr(ver_a, field), getattr(ver_b, field)) for field in VERSION_PARTS]
    if locale:
        pairs = [(_row(ver_a, locale), _row(ver_b, locale))]
    else:
        rows_a = {r.locale: r for r in ver_a.locales.all()}
        rows_b = {r.locale: r for r in ver_b.locales.all()}
        pairs = [(rows_a.get(loc), rows_b.get(loc)) for loc in sorted(set(rows_a) | set(rows_b))]
    variables = {}
    for row_a, row_b in pairs:
        name = (row_a or row_b).locale
        for field in LOCALE_PARTS:
            parts.append(_part(field, getattr(row_a, field) if row_a else "", getattr(row_b, field) if row_b else "",
                               locale=name))
        variables[name] = _variables(template, row_a, row_b)
    return {"template": template.template_key, "mode": "version",
            "a": {"version": ver_a.version, "locale": locale or None},
            "b": {"version": ver_b.version, "locale": locale or None},
            "variables": variables, "parts": _shown(parts)}

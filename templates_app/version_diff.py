"""Side-by-side comparison of two template versions, for the admin's "compare versions" page."""

from __future__ import annotations

import difflib
import json

from templates_app.models import TemplateVersion

LOCALE_PARTS = ("subject", "body_html", "body_text", "push_title", "push_body", "sms_text", "in_app_content", "voice_text")
VERSION_PARTS = ("variables_schema", "sample_variables", "experiment", "change_notes")


def _lines(value) -> list[str]:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else ""
    return str(value or "").splitlines()


def version_diff(a: TemplateVersion, b: TemplateVersion) -> list[dict]:
    """Side-by-side HTML tables (difflib) for every part that differs between two versions."""
    differ = difflib.HtmlDiff(tabsize=2, wrapcolumn=70)
    parts = []
    for field in VERSION_PARTS:
        left, right = _lines(getattr(a, field)), _lines(getattr(b, field))
        parts.append({"label": field, "table": differ.make_table(left, right, f"v{a.version}", f"v{b.version}",
                                                                 context=True, numlines=3)
                      if left != right else ""})
    rows_a = {r.locale: r for r in a.locales.all()}
    rows_b = {r.locale: r for r in b.locales.all()}
    for locale in sorted(set(rows_a) | set(rows_b)):
        for field in LOCALE_PARTS:
            left = _lines(getattr(rows_a[locale], field)) if locale in rows_a else []
            right = _lines(getattr(rows_b[locale], field)) if locale in rows_b else []
            if left or right:
                parts.append({"label": f"[{locale}] {field}",
                              "table": differ.make_table(left, right, f"v{a.version}", f"v{b.version}",
                                                         context=True, numlines=3) if left != right else ""})
    return parts

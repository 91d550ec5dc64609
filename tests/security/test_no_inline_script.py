"""No inline script anywhere in our HTML: our CSP (script-src 'self') refuses inline <script> bodies,
on*= event handlers and javascript: URLs, so any of them is a feature that silently does nothing
(issue 13: the console's tenant selector). Behaviour lives in static .js files instead.

This scans every project template and every Python module that builds HTML (format_html, mark_safe,
f-strings), so a new inline handler fails here before a browser ever sees it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

APPS = ("admin_console", "comms", "config", "delivery", "preferences", "templates_app", "tracking", "webhooks")
# An inline handler attribute (onclick=, onchange= …) inside a tag, an inline <script> (one without
# src=), or a javascript: URL.
HANDLER = re.compile(r"<[a-zA-Z][^<>]*\son[a-z]+\s*=", re.S)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)


def _sources() -> list[Path]:
    files: list[Path] = []
    for app in APPS:
        for path in (ROOT / app).rglob("*"):
            if path.suffix in (".html", ".py") and "migrations" not in path.parts:
                files.append(path)
    return files


def _offences(text: str) -> list[str]:
    found = []
    for pattern in (HANDLER, INLINE_SCRIPT, JS_URL):
        found += [m.group(0)[:80] for m in pattern.finditer(text)]
    return found


def test_the_scanner_catches_each_kind_of_inline_script():
    assert _offences('<select name="tenant" onchange="this.form.submit()">')
    assert _offences("<button\n  onclick='go()'>")
    assert _offences("<script>alert(1)</script>")
    assert _offences('<a href="javascript:alert(1)">x</a>')
    assert not _offences('<script src="/static/admin_console/console.js" defer></script>')
    assert not _offences('<select name="tenant" data-autosubmit>')


def test_no_template_or_python_module_contains_inline_script():
    sources = _sources()
    assert len(sources) > 100  # really walking the project
    offences = {str(p.relative_to(ROOT)): hits for p in sources if (hits := _offences(p.read_text()))}
    assert offences == {}

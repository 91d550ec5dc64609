"""Run every registered rule over a version's email, one locale at a time.

A finding is plain JSON (stored on the version, returned by the API, shown in the admin):
``{"rule": "A11Y_IMG_ALT", "level": "error", "locale": "en-US", "element": "body > … > img[src=…]",
"message": "…"}``. Rules live in a11y.py, contrast.py and darkmode.py and register themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from comms.enums import Channel
from templates_app import rendering
from templates_app.models import TemplateLocale, TemplateVersion
from templates_app.quality import a11y, contrast, darkmode  # noqa: F401  (importing registers the rules)
from templates_app.quality.registry import MAX_PER_RULE, RULES, Email
from templates_app.services.render import RenderContext, render_channel

log = logging.getLogger(__name__)


def lint_email(*, subject: str, html: str, text: str, locale: str) -> list[dict[str, Any]]:
    """Findings for one rendered email. A rule that crashes is reported as a warning, never raised:
    a bug in the lint must not stop a submit (and must not let a template through silently)."""
    email = Email(locale=locale, subject=subject or "", html=html or "", text=text or "")
    findings: list[dict[str, Any]] = []
    for rule in RULES.values():
        try:
            hits = []
            seen = set()
            for hit in rule.check(email):
                if (hit.element, hit.message) not in seen:
                    seen.add((hit.element, hit.message))
                    hits.append(hit)
        except Exception as exc:  # noqa: BLE001 — any input must give findings, not a 500
            log.exception("lint rule %s failed", rule.id)
            findings.append({"rule": "LINT_RULE_FAILED", "level": "warning", "locale": locale, "element": rule.id,
                             "message": f"The {rule.id} check could not run ({type(exc).__name__}); check by hand."})
            continue
        for hit in hits[:MAX_PER_RULE]:
            findings.append({"rule": rule.id, "level": rule.level, "locale": locale, "element": hit.element,
                             "message": hit.message})
        if len(hits) > MAX_PER_RULE:
            findings.append({"rule": rule.id, "level": rule.level, "locale": locale, "element": "…",
                             "message": f"{len(hits) - MAX_PER_RULE} more like the above."})
    return findings


def lint_locale(version: TemplateVersion, row: TemplateLocale) -> list[dict[str, Any]]:
    """Findings for one locale's email rendered with the version's sample variables (what the preview
    shows): the same render path a send takes, so the lint sees the recipient's HTML."""
    try:
        out = render_channel(RenderContext(version, row, None, version.sample_variables or {}), Channel.EMAIL)
    except rendering.TemplateSyntaxError:
        return []  # validation reports it; there is no email to lint
    if not out.body_html and not out.body:
        return []
    return lint_email(subject=out.subject or "", html=out.body_html or "", text=out.body or "", locale=row.locale)


def lint_version(version: TemplateVersion) -> list[dict[str, Any]]:
    """Findings for every locale's email. Templates without an email channel have nothing to lint."""
    if Channel.EMAIL not in version.template.channels:
        return []
    return [finding for row in version.locales.order_by("locale") for finding in lint_locale(version, row)]


def rules_catalogue() -> list[dict[str, str]]:
    """Every rule with its id, level and title: for the docs and the admin legend."""
    return [{"rule": r.id, "level": r.level, "title": r.title} for r in RULES.values()]

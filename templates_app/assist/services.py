"""Assistant use cases: SMS compression and variable warnings (rule-based), subject lines and draft
translations (language model). Suggestions are returned; a translation is written only into a draft."""

from __future__ import annotations

import json
import re
from typing import Any

from comms import errors
from comms.audit import audit_record
from templates_app import rendering, services
from templates_app.assist import llm
from templates_app.assist.sms import sms_compress
from templates_app.assist.variables import version_variable_warnings
from templates_app.models import Template, TemplateLocale, TemplateVersion
from templates_app.services.lifecycle import LOCALE_FIELDS

MAX_SUBJECTS = 10
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def assist_version(template: Template, number: int | None) -> TemplateVersion:
    """The version asked for, else the newest (the draft an author is working on)."""
    versions = template.versions.all()
    version = versions.filter(version=number).first() if number else versions.order_by("-version").first()
    if version is None:
        raise errors.NotFound("No such version.")
    return version


def assist_sms_compress(*, version: TemplateVersion | None, text: str | None, locale: str = "",
                        max_segments: int = 1) -> dict:
    """A compression suggestion for `text`, or for each locale's sms_text of `version`."""
    if text is not None:
        return {"suggestions": [{"locale": locale or None, **sms_compress(text, max_segments=max_segments).as_dict()}]}
    rows = version.locales.exclude(sms_text="").order_by("locale")
    if locale:
        rows = rows.filter(locale=locale)
    return {"version": version.version,
            "suggestions": [{"locale": row.locale, **sms_compress(row.sms_text, max_segments=max_segments).as_dict()}
                            for row in rows]}


def assist_variables(*, version: TemplateVersion) -> dict:
    return version_variable_warnings(version)


def _source_row(version: TemplateVersion, locale: str = "") -> TemplateLocale:
    rows = {row.locale: row for row in version.locales.all()}
    row = rows.get(locale or version.template.default_locale) or next(iter(sorted(rows.items())), (None, None))[1]
    if row is None:
        raise errors.TemplateChannel("The version has no content to work from.")
    return row


def _placeholders(source: str) -> list[str]:
    return sorted(re.findall(r"\{\{\{?.*?\}?\}\}", source, re.S))


def assist_subjects(*, version: TemplateVersion, actor: Any, locale: str = "", count: int = 5) -> dict:
    """Subject-line suggestions for an email version; returned, never written (the author picks one)."""
    row = _source_row(version, locale)
    if not row.subject and not row.body_html and not row.body_text:
        raise errors.TemplateChannel("The version has no email content to suggest subjects for.")
    body = row.body_text or re.sub(r"<[^>]+>", " ", row.body_html)
    body = re.sub(r"\s+", " ", body)[:4000]
    data, facts = llm.chat_json(
        system=("You write email subject lines for transactional and marketing email. Answer with JSON only: "
                '{"subjects": ["...", ...]}. Keep Handlebars placeholders such as {{order.id}} exactly as written; '
                "no new placeholders; each subject under 78 characters; no spam words, no ALL CAPS."),
        user=json.dumps({"locale": row.locale, "current_subject": row.subject, "body": body, "count": count},
                        ensure_ascii=False))
    subjects = data.get("subjects")
    if not isinstance(subjects, list) or not subjects:
        raise llm.AssistantFailed("The language model's answer has no list of subjects.", details={"reason": "shape"})
    allowed = set(_placeholders(row.subject + " " + row.body_html + " " + row.body_text))
    suggestions = []
    for subject in subjects[:MAX_SUBJECTS]:
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 200:
            continue
        subject = " ".join(subject.split())
        try:
            rendering.check_names(subject, part="subject")
            rendering.compile_handlebars(rendering.as_text_source(subject), part="subject")
        except rendering.TemplateSyntaxError:
            continue  # a suggestion that does not compile is no suggestion
        if any(p not in allowed for p in _placeholders(subject)):
            continue  # invented variables would render empty
        suggestions.append(subject)
    if not suggestions:
        raise llm.AssistantFailed("None of the suggested subjects was usable.", details={"reason": "unusable"})
    audit_record(actor=actor, action="template.assist.subjects", target=version,
                 diff={"locale": row.locale, "count": len(suggestions), "model": facts["model"]},
                 tenant=version.template.tenant)
    return {"version": version.version, "locale": row.locale, "current": row.subject, "suggestions": suggestions,
            "draft": True, **facts}


def _translate_one(row: TemplateLocale, target: str) -> dict:
    fields = {f: getattr(row, f) for f in LOCALE_FIELDS if getattr(row, f)}
    data, _facts = llm.chat_json(
        system=("You translate notification templates. Answer with JSON only: an object with exactly the keys "
                "you were given, each value translated into the target locale. Keep every Handlebars expression "
                "({{...}}, {{{...}}}, {{#if}}…{{/if}}) and every HTML/MJML tag and attribute exactly as written; "
                "translate only human-readable text. Keep STOP/HELP keywords in SMS unchanged."),
        user=json.dumps({"source_locale": row.locale, "target_locale": target, "fields": fields}, ensure_ascii=False),
        temperature=0.1)
    data = data.get("fields", data) if isinstance(data.get("fields"), dict) else data
    out: dict[str, Any] = {"locale": target}
    for name, source in fields.items():
        value = data.get(name)
        if name == "in_app_content":
            if not isinstance(value, dict):
                raise llm.AssistantFailed(f"The translation into {target} lacks in_app_content.",
                                          details={"reason": "shape", "locale": target, "field": name})
            value_text, source_text = json.dumps(value), json.dumps(source)
        else:
            if not isinstance(value, str) or not value.strip():
                raise llm.AssistantFailed(f"The translation into {target} lacks '{name}'.",
                                          details={"reason": "shape", "locale": target, "field": name})
            value_text, source_text = value, source
        if _placeholders(value_text) != _placeholders(source_text):
            raise llm.AssistantFailed(f"The translation into {target} changed the placeholders of '{name}'.",
                                      details={"reason": "placeholders", "locale": target, "field": name})
        out[name] = value
    return out


def assist_translate(*, template: Template, actor: Any, locales: list[str], user: Any = None,
                     source_locale: str = "") -> dict:
    """Draft translations into the locales the newest version lacks, written into the template's draft
    version (opened from the newest when needed). The live version never changes; a human submits and
    an approver approves as for any edit. All locales are translated before anything is written."""
    bad = [loc for loc in locales if not isinstance(loc, str) or not _LOCALE.match(loc)]
    if bad or not locales:
        raise errors.ValidationFailed("locales must be a non-empty list of locale codes (e.g. 'fr', 'pt-BR').",
                                      details={"field": "locales", "invalid": bad[:5]})
    latest = assist_version(template, None)
    present = set(latest.locales.values_list("locale", flat=True))
    missing = [loc for loc in dict.fromkeys(locales) if loc not in present]
    if not missing:
        return {"version": latest.version, "created": [], "skipped": sorted(set(locales)), "draft": True}
    row = _source_row(latest, source_locale)
    translated = [_translate_one(row, target) for target in missing]
    try:
        draft = services.template_edit(template=template, actor=actor, user=user, data={"locales": translated})
    except errors.TemplateInvalid as exc:  # the model broke the markup: its answer, not the caller's input
        raise llm.AssistantFailed(f"A translation does not compile: {exc.message}",
                                  details={"reason": "invalid_template", **exc.details}) from None
    audit_record(actor=actor, action="template.assist.translate", target=draft,
                 diff={"source": row.locale, "locales": missing}, tenant=template.tenant)
    return {"version": draft.version, "status": draft.status, "created": missing,
            "skipped": sorted(set(locales) - set(missing)), "source_locale": row.locale, "draft": True}

"""Template lifecycle: create, edit (always a draft), validate, submit, review, activate/roll back."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from comms.enums import Channel
from comms.models import ApiKey
from templates_app import rendering
from templates_app.models import Template, TemplateLocale, TemplateReview, TemplateVersion
from templates_app.quality import lint as quality_lint  # a module: quality.lint renders through services.render
from templates_app.quality.service import lint_require_clear, lint_summary
from templates_app.services.render import (
    RenderContext,
    pick_locale,
    pick_variant,
    render_channel,
    schema_validator,
    variable_errors,
)
from templates_app.services.previews import version_previews_request
from templates_app.services.spam import preview_spam

log = logging.getLogger(__name__)
Status = TemplateVersion.Status
TEMPLATE_FIELDS = ("name", "description", "category", "channels", "default_locale", "sms_segment_cap", "sms_overflow")
VERSION_FIELDS = ("variables_schema", "sample_variables", "experiment", "change_notes")
LOCALE_FIELDS = ("subject", "body_html", "body_text", "push_title", "push_body", "sms_text", "in_app_content", "voice_text")
HTML_PARTS = ("body_html",)
TEXT_PARTS = ("subject", "body_text", "push_title", "push_body", "sms_text", "voice_text")


def _syntax_check(template: Template, locales: list[dict]) -> None:
    """Every part must compile; the first failure is reported with its line and column."""
    for row in locales:
        try:
            for part in HTML_PARTS:
                if row.get(part):
                    rendering.check_trusted_syntax(row[part], trusted=template.trusted, part=part)
                    rendering.check_names(row[part], part=part)
                    rendering.compile_handlebars(rendering.compile_mjml(row[part]), part=part)
            for part in TEXT_PARTS:
                if row.get(part):
                    rendering.check_names(row[part], part=part)  # positions as typed, before {{ }} → {{{ }}}
                    rendering.compile_handlebars(rendering.as_text_source(row[part]), part=part)
            for path, source in _json_strings(row.get("in_app_content") or {}, "in_app_content"):
                rendering.check_trusted_syntax(source, trusted=template.trusted, part=path)
                rendering.compile_handlebars(source, part=path)
        except rendering.TemplateSyntaxError as exc:
            raise errors.TemplateInvalid(str(exc), details={
                "locale": row.get("locale"), "part": exc.part, "line": exc.line, "column": exc.column}) from None


def _json_strings(value: Any, path: str):
    """(path, text) for every string in in-app JSON: each one is rendered, so each one must compile."""
    if isinstance(value, str):
        if "{{" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, f"{path}[{index}]")


def _validate_shape(data: dict) -> None:
    channels = data.get("channels")
    if channels is not None and (not channels or any(c not in Channel.values for c in channels)):
        raise errors.ValidationFailed("channels must be a non-empty list of " + ", ".join(Channel.values),
                                      details={"field": "channels"})
    if "variables_schema" in data:
        schema_validator(data["variables_schema"])


def _write_locales(version: TemplateVersion, locales: list[dict]) -> None:
    seen = set()
    for row in locales:
        locale = row.get("locale") or version.template.default_locale
        if locale in seen:
            raise errors.ValidationFailed(f"locale {locale} appears twice", details={"field": "locales"})
        seen.add(locale)
        TemplateLocale.objects.update_or_create(
            version=version, locale=locale, defaults={f: row.get(f, "" if f != "in_app_content" else {})
                                                      for f in LOCALE_FIELDS})


@transaction.atomic
def template_create(*, tenant: Any, actor: Any, data: dict, user: Any = None) -> Template:
    """A new template and its first (draft) version. Nothing is saved when any part fails to compile."""
    _validate_shape(data)
    template = Template(tenant=tenant, template_key=data["template_key"], created_by=user,
                        created_by_key=_api_key(actor), **{f: data[f] for f in TEMPLATE_FIELDS if f in data})
    if data.get("trusted"):
        if user is None or not user.has_perm("templates_app.use_raw_html"):
            raise errors.Forbidden("Only users with the 'use raw HTML' permission may create trusted templates.")
        template.trusted = True
    locales = data.get("locales") or []
    _syntax_check(template, locales)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise errors.TemplateKeyTaken(details={"template": data["template_key"]}) from None
    version = TemplateVersion.objects.create(template=template, version=1, created_by=user,
                                             created_by_key=_api_key(actor),
                                             **{f: data[f] for f in VERSION_FIELDS if f in data})
    _write_locales(version, locales)
    audit_record(actor=actor, action="template.create", target=template, diff={"version": 1}, tenant=tenant)
    return template


def _api_key(actor: Any) -> ApiKey | None:
    """The API key when the actor is one (API calls), so "created by" names it; None for users/system."""
    if isinstance(actor, ApiKey):
        return actor
    key = getattr(actor, "api_key", None)  # comms.auth.ServicePrincipal: request.user of an API call
    return key if isinstance(key, ApiKey) else None


def _open_draft(template: Template, user: Any, actor: Any = None) -> TemplateVersion:
    """The draft to edit: the open one, or a new copy of the latest version (never the live one)."""
    latest = template.versions.order_by("-version").first()
    if latest is not None and latest.status == Status.DRAFT:
        return latest
    draft = TemplateVersion.objects.create(
        template=template, version=(latest.version if latest else 0) + 1, created_by=user,
        created_by_key=_api_key(actor), **{f: getattr(latest, f) for f in VERSION_FIELDS} if latest else {},
    )
    if latest is not None:
        for row in latest.locales.all():
            TemplateLocale.objects.create(version=draft, locale=row.locale,
                                          **{f: getattr(row, f) for f in LOCALE_FIELDS})
    return draft


@transaction.atomic
def template_edit(*, template: Template, actor: Any, data: dict, user: Any = None) -> TemplateVersion:
    """Apply changes to the template's draft version, creating it from the latest when needed."""
    _validate_shape(data)
    template = Template.objects.select_for_update().get(pk=template.pk)
    for f in TEMPLATE_FIELDS:
        if f in data:
            setattr(template, f, data[f])
    if "locales" in data:
        _syntax_check(template, data["locales"])
    template.save()
    draft = _open_draft(template, user, actor)
    for f in VERSION_FIELDS:
        if f in data:
            setattr(draft, f, data[f])
    draft.save()
    if "locales" in data:
        _write_locales(draft, data["locales"])
    audit_record(actor=actor, action="template.edit", target=draft, diff={k: "changed" for k in data},
                 tenant=template.tenant)
    return draft


# --- validation ---------------------------------------------------------------------------------------

_IMG_SRC = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']([^"'{}]+)["']""", re.I)


def _image_problems(html: str) -> list[str]:
    """Images must resolve before activation (EC-COM-003); only absolute http(s) sources are fetched."""
    problems = []
    for url in sorted(set(_IMG_SRC.findall(html))):
        if not url.startswith(("http://", "https://")):
            continue
        try:
            response = httpx.head(url, timeout=settings.COMMS_ASSET_CHECK_TIMEOUT, follow_redirects=True)
            if response.status_code >= 400:
                problems.append(f"image {url} answers {response.status_code}")
        except httpx.HTTPError as exc:
            problems.append(f"image {url} does not resolve ({type(exc).__name__})")
    return problems


def version_validate(version: TemplateVersion, *, check_assets: bool = True) -> list[str]:
    """Everything that blocks activation: syntax, schema coverage, content per channel, images."""
    template = version.template
    problems: list[str] = []
    rows = list(version.locales.all())
    if not rows:
        return ["no content in any locale"]
    if template.default_locale not in {r.locale for r in rows}:
        problems.append(f"no content in the default locale {template.default_locale}")
    try:
        _syntax_check(template, [{"locale": r.locale, **{f: getattr(r, f) for f in LOCALE_FIELDS}} for r in rows])
    except errors.TemplateInvalid as exc:
        return [exc.message]
    declared = set((version.variables_schema or {}).get("properties", {}))
    if "email" in template.channels:  # supplied at send time (preferences.headers.link_variables)
        declared |= {"unsubscribe_url", "preferences_url"}
    for row in rows:
        sources = " ".join(str(getattr(row, f)) for f in (*TEXT_PARTS, *HTML_PARTS)) + " " + str(row.in_app_content)
        for variant in (version.experiment or {}).get("variants", []):
            sources += " " + " ".join(str(v) for k, v in variant.items() if k in TEXT_PARTS)
        unknown = sorted(rendering.referenced_variables(sources) - declared)
        if unknown:
            problems.append(f"[{row.locale}] variables not in the schema: {', '.join(unknown)}")
        variants = [v for v in (version.experiment or {}).get("variants", []) if isinstance(v, dict)]
        for variant in [None, *variants]:
            for channel in template.channels:
                label = f"[{row.locale}] {channel}" + (f" (variant {variant.get('key', '')})" if variant else "")
                try:  # a variant's parts are compiled here for the first time
                    rendered = render_channel(RenderContext(version, row, variant, version.sample_variables or {}),
                                              channel)
                except rendering.TemplateSyntaxError as exc:
                    problems.append(f"{label}: {exc}")
                    continue
                problems += [f"{label}: {p}" for p in rendered.problems if not p.startswith(("warning:", "unsafe URL"))]
        if check_assets and settings.COMMS_ASSET_CHECK and row.body_html:
            problems += [f"[{row.locale}] {p}" for p in _image_problems(rendering.compile_mjml(row.body_html))]
    sample_problems = variable_errors(schema_validator(version.variables_schema), version.sample_variables or {})
    problems += [f"sample variables: {p.message}" for p in sample_problems]
    return problems


# --- review workflow ----------------------------------------------------------------------------------

def _locked(version: TemplateVersion) -> TemplateVersion:
    return TemplateVersion.objects.select_for_update().select_related("template").get(pk=version.pk)


@transaction.atomic
def version_submit(*, version: TemplateVersion, actor: Any, user: Any = None) -> TemplateVersion:
    version = _locked(version)
    if version.status != Status.DRAFT:
        raise errors.TemplateNotEditable(f"v{version.version} is {version.status}; only drafts are submitted.")
    problems = version_validate(version)
    if problems:
        raise errors.TemplateInvalid("The version cannot be submitted: " + problems[0],
                                     details={"problems": problems})
    version.status, version.submitted_by, version.submitted_at = Status.PENDING, user, timezone.now()
    # The approver reviews with SpamAssassin's verdict beside the content; spamd down does not block a submit.
    spam = preview_spam(template_preview(version=version, variables=None))
    version.spam_report = spam or {}
    version.spam_score = spam["score"] if spam else None
    version.reviews.all().delete()  # a resubmission starts a fresh round of approvals
    # Accessibility/dark-mode lint (issue 20): warnings inform, errors block approval until overridden.
    version.lint_findings, version.lint_overrides = quality_lint.lint_version(version), []
    version.save()
    version_previews_request(version=version)  # Chromium screenshots for the approver, after commit
    lint = lint_summary(version)
    audit_record(actor=actor, action="template.submit", target=version, tenant=version.template.tenant,
                 diff={"lint": {"errors": lint["errors"], "warnings": lint["warnings"]}})
    return version


@transaction.atomic
def version_approve(*, version: TemplateVersion, user: Any, notes: str = "", activate: bool = True) -> TemplateVersion:
    """One approval; the last required one activates the version (unless ``activate`` is false: a staged
    rollout, templates_app.rollout, takes it live instead). Authors never approve their own."""
    version = _locked(version)
    template = version.template
    if version.status != Status.PENDING:
        raise errors.ApprovalRefused(f"v{version.version} is {version.status}, not pending review.")
    if not user.has_perm("templates_app.approve_template"):
        raise errors.Forbidden("Approving needs the 'approve templates' permission.")
    if user.pk in (version.created_by_id, version.submitted_by_id):
        raise errors.ApprovalRefused("An author cannot approve their own template.")
    if version.reviews.filter(reviewer=user, decision=TemplateReview.Decision.APPROVE).exists():
        raise errors.ApprovalRefused("This approver has already approved; a second approver must be someone else.")
    lint_require_clear(version)
    TemplateReview.objects.create(version=version, reviewer=user, decision=TemplateReview.Decision.APPROVE, notes=notes)
    audit_record(actor=user, action="template.approve", target=version, reason=notes, tenant=template.tenant)
    approvals = version.reviews.filter(decision=TemplateReview.Decision.APPROVE).count()
    if approvals >= template.approvals_required:
        version.status, version.approved_at = Status.APPROVED, timezone.now()
        version.save()
        if activate:
            _activate(version, actor=user, reason="approved")
    return version


@transaction.atomic
def version_request_changes(*, version: TemplateVersion, user: Any, notes: str) -> TemplateVersion:
    version = _locked(version)
    if version.status != Status.PENDING:
        raise errors.ApprovalRefused(f"v{version.version} is {version.status}, not pending review.")
    if not notes.strip():
        raise errors.ValidationFailed("Say what should change (notes are required).")
    TemplateReview.objects.create(version=version, reviewer=user, decision=TemplateReview.Decision.REQUEST_CHANGES,
                                  notes=notes)
    version.status, version.review_notes = Status.DRAFT, notes
    version.save()
    audit_record(actor=user, action="template.request_changes", target=version, reason=notes,
                 tenant=version.template.tenant)
    return version


def _activate(version: TemplateVersion, *, actor: Any, reason: str) -> None:
    template = Template.objects.select_for_update().get(pk=version.template_id)
    previous = template.active_version_id
    template.active_version = version
    template.save(update_fields=["active_version", "updated_at"])
    version.activated_at = timezone.now()
    version.save(update_fields=["activated_at"])
    audit_record(actor=actor, action="template.activate", target=version, reason=reason, tenant=template.tenant,
                 diff={"active_version": [previous, version.pk]})


@transaction.atomic
def version_activate(*, version: TemplateVersion, user: Any, reason: str = "rollback") -> TemplateVersion:
    """Make an approved version live again (rollback) — approvers only."""
    version = _locked(version)
    if version.status != Status.APPROVED:
        raise errors.ApprovalRefused(f"Only approved versions can be activated; v{version.version} is {version.status}.")
    if not user.has_perm("templates_app.approve_template"):
        raise errors.Forbidden("Activating needs the 'approve templates' permission.")
    _activate(version, actor=user, reason=reason)
    return version


# --- preview ------------------------------------------------------------------------------------------

def template_preview(*, version: TemplateVersion, variables: dict | None, locale: str = "",
                     recipient_key: str = "", spam_check: bool = False) -> dict:
    """Every channel rendered from sample (or given) variables, with every problem; sends nothing.
    With ``spam_check`` the email channel carries SpamAssassin's verdict under ``spam``."""
    variables = version.sample_variables if variables is None else variables
    problems = [p.message for p in variable_errors(schema_validator(version.variables_schema), variables)]
    row = pick_locale(version, locale)
    variant = pick_variant(version, recipient_key) if recipient_key else None
    channels: dict[str, dict] = {}
    for channel in version.template.channels:
        try:
            out = render_channel(RenderContext(version, row, variant, variables), channel)
        except rendering.TemplateSyntaxError as exc:
            channels[channel] = {"problems": [str(exc)]}
            continue
        result: dict[str, Any] = {"problems": out.problems}
        if channel == Channel.EMAIL:
            result.update(subject=out.subject, html=out.body_html, text=out.body)
            # Live accessibility/dark-mode findings for exactly what this preview rendered (issue 20).
            result["lint"] = quality_lint.lint_email(subject=out.subject, html=out.body_html, text=out.body, locale=row.locale)
        elif channel == Channel.SMS:
            result.update(text=out.body, encoding=out.sms.encoding, units=out.sms.units, segments=out.sms.segments)
        elif channel == Channel.PUSH:
            result.update(title=out.subject, body=out.body)
        elif channel == Channel.VOICE:
            result.update(text=out.body)
        else:
            result.update(content=out.data)
        channels[channel] = result
    if spam_check and (spam := preview_spam({"channels": channels})) is not None:
        channels[Channel.EMAIL]["spam"] = spam
    return {"template": version.template.template_key, "version": version.version, "status": version.status,
            "locale": row.locale, "variant": (variant or {}).get("key", ""), "variable_problems": problems,
            "channels": channels}

"""Rendering a template version for a channel, locale and experiment variant."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db.models import OuterRef, Subquery
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from comms import errors
from comms.addresses import content_limit_problems
from comms.links import is_link_key, safe_link
from comms.enums import Channel
from templates_app import bidi, rendering, sms_encoding
from preferences.headers import link_variables
from templates_app.models import Template, TemplateLocale, TemplateRollout, TemplateVersion

log = logging.getLogger(__name__)
FALLBACK_LOCALE = "en-US"


# --- locale and variant ----------------------------------------------------------------------------

def locale_chain(requested: str, default: str) -> list[str]:
    """recipient locale → language only → template default → en-US (seed 001)."""
    chain: list[str] = []
    for candidate in (requested, requested.split("-")[0] if requested else "", default, FALLBACK_LOCALE):
        if candidate and candidate not in chain:
            chain.append(candidate)
    return chain


def _frozen(version: TemplateVersion) -> tuple:
    """Cache key of a frozen version's content. A version sent back to draft, edited and resubmitted
    keeps its pk, so the submit time is part of the key: each submission is a new generation."""
    return (version.pk, version.submitted_at)


def _locales(version: TemplateVersion) -> dict[str, TemplateLocale]:
    """A frozen version's locale rows are read once per process, not once per recipient."""
    if version.status == TemplateVersion.Status.DRAFT:
        return {row.locale: row for row in version.locales.all()}
    return rendering.compiled.get((*_frozen(version), "locales"),
                                  lambda: {row.locale: row for row in version.locales.all()})


def pick_locale(version: TemplateVersion, requested: str) -> TemplateLocale:
    available = _locales(version)
    for candidate in locale_chain(requested or "", version.template.default_locale):
        if candidate in available:
            if requested and candidate != requested:
                # The translation queue reads these lines (EC-COM-006).
                log.warning("template %s v%s has no locale %s; fell back to %s",
                            version.template.template_key, version.version, requested, candidate)
            return available[candidate]
    if available:
        return next(iter(available.values()))
    raise errors.TemplateChannel(f"Template '{version.template.template_key}' v{version.version} has no content.")


def sticky_point(salt: str, name: str, recipient_key: str) -> float:
    """A recipient's fixed point in [0, 1) for a salted split: the same recipient always lands on the
    same point, so experiments and staged rollouts (templates_app.rollout) keep them where they were."""
    digest = hashlib.sha256(f"{salt}:{name}:{recipient_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_variant(version: TemplateVersion, recipient_key: str) -> dict | None:
    """Sticky bucketing: a salted hash of (experiment, recipient) against the weights."""
    experiment = version.experiment or {}
    variants = [v for v in experiment.get("variants", []) if float(v.get("weight", 0)) > 0]
    if not variants or not recipient_key:
        return None
    salt = str(experiment.get("salt") or version.template_id)
    point = sticky_point(salt, experiment.get("name", ""), recipient_key) * sum(float(v["weight"]) for v in variants)
    for variant in variants:
        point -= float(variant["weight"])
        if point < 0:
            return variant
    return variants[-1]


# --- variables ------------------------------------------------------------------------------------------

def schema_validator(schema: dict) -> Draft202012Validator:
    try:
        Draft202012Validator.check_schema(schema or {})
    except SchemaError as exc:
        raise errors.TemplateInvalid(f"variables_schema is not a valid JSON Schema: {exc.message}") from None
    return Draft202012Validator(schema or {})


def variable_errors(validator: Draft202012Validator, variables: dict) -> list[errors.CommsError]:
    """Typed problems: a missing required variable names itself (EC-COM-001)."""
    problems: list[errors.CommsError] = []
    for error in sorted(validator.iter_errors(variables), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    full = f"{path}.{name}" if path else name
                    problems.append(errors.TemplateMissingVar(f"Missing template variable '{full}'.",
                                                              details={"variable": full}))
        else:
            problems.append(errors.TemplateBadVar(f"Variable '{path or '(root)'}': {error.message}",
                                                  details={"variable": path, "rule": error.validator}))
    return problems


def version_validator(version: TemplateVersion) -> Draft202012Validator:
    if version.status == TemplateVersion.Status.DRAFT:
        return schema_validator(version.variables_schema)
    return rendering.compiled.get((*_frozen(version), "schema"), lambda: schema_validator(version.variables_schema))


def check_variables(version: TemplateVersion, variables: dict) -> None:
    problems = variable_errors(version_validator(version), variables)
    if problems:
        raise problems[0]


# --- rendering --------------------------------------------------------------------------------------------

def _compiled(version: TemplateVersion, row: TemplateLocale, part: str, source: str, *, html: bool):
    """Compile a part once per immutable version; drafts are compiled fresh (they still change)."""
    def build():
        if html:
            rendering.check_trusted_syntax(source, trusted=version.template.trusted, part=part)
            return rendering.compile_handlebars(source, part=part)
        return rendering.compile_handlebars(rendering.as_text_source(source), part=part)

    if version.status == TemplateVersion.Status.DRAFT:
        return build()
    return rendering.compiled.get((*_frozen(version), row.locale, part, html), build)


def _email_html_source(version: TemplateVersion, row: TemplateLocale) -> tuple[str, bool]:
    """Compiled MJML with URL attributes guarded: (Handlebars source, needs a per-render URL check)."""
    def build():  # lang/dir on the root, mirrored MJML defaults for right-to-left locales (templates_app/bidi.py)
        compiled = rendering.compile_mjml(bidi.mjml_direction(row.body_html, row.locale))
        return rendering.guard_urls(bidi.html_direction(compiled, row.locale, source=row.body_html))

    if version.status == TemplateVersion.Status.DRAFT:
        return build()
    return rendering.compiled.get((*_frozen(version), row.locale, "mjml"), build)


def _override(row: TemplateLocale, variant: dict | None, name: str) -> str:
    if variant and isinstance(variant.get(name), str):
        return variant[name]
    return getattr(row, name)


@dataclass
class RenderContext:
    version: TemplateVersion
    row: TemplateLocale
    variant: dict | None
    variables: dict
    timezone: str = "UTC"


def render_channel(ctx: RenderContext, channel: str) -> rendering.Rendered:
    """Render one channel; problems that make it unsendable are listed, not raised."""
    template: Template = ctx.version.template
    helpers = rendering.make_helpers(ctx.row.locale, ctx.timezone, trusted=template.trusted)
    out = rendering.Rendered()
    variables = ctx.variables
    if channel == Channel.EMAIL:  # {{unsubscribe_url}}, {{preferences_url}}: personalised when sent
        variables = {**link_variables(), **ctx.variables}

    def text(part: str, source: str) -> str:
        if not source:
            return ""
        if ctx.variant and part in ctx.variant:  # an overridden part is its own compiled template
            part = f"{part}@{ctx.variant.get('key', '')}"
        return rendering.render_part(_compiled(ctx.version, ctx.row, part, source, html=False), variables, helpers,
                                     out.problems)

    if channel == Channel.EMAIL:
        subject = _override(ctx.row, ctx.variant, "subject")
        out.subject = bidi.mark_text(" ".join(text("subject", subject).split()), ctx.row.locale)
        if ctx.row.body_html:
            html_source, check_urls = _email_html_source(ctx.version, ctx.row)
            fn = _compiled(ctx.version, ctx.row, "body_html", html_source, html=True)
            out.body_html = rendering.render_part(fn, variables, helpers, out.problems)
            if check_urls:
                out.body_html = rendering.sanitise_urls(out.body_html, out.problems)
        body_text = _override(ctx.row, ctx.variant, "body_text")
        if body_text:
            out.body = text("body_text", body_text)
        elif ctx.row.body_html:
            if ctx.version.status == TemplateVersion.Status.DRAFT:
                text_source = rendering.html_to_text_source(html_source)
            else:
                text_source = rendering.compiled.get((*_frozen(ctx.version), ctx.row.locale, "generated_text"),
                                                     lambda: rendering.html_to_text_source(html_source))
            out.body = text("generated_text", text_source)
        if not (out.body or out.body_html):
            out.problems.append("email has no body")
    elif channel == Channel.SMS:
        out.body = text("sms_text", _override(ctx.row, ctx.variant, "sms_text")).strip()
        out.body = bidi.mark_sms(out.body, ctx.row.locale)  # RLM only where UCS-2 already (bidi.py)
        out.sms = sms_encoding.sms_segments(out.body)
        cap = template.sms_segment_cap
        if out.sms.segments > cap:
            if template.sms_overflow == "truncate":
                out.problems.append(f"warning: SMS truncated from {out.sms.segments} to {cap} segments")
                out.body = sms_encoding.truncate_sms(out.body, cap)
                out.sms = sms_encoding.sms_segments(out.body)
                out.data["truncated"] = True
            else:
                out.problems.append(f"SMS needs {out.sms.segments} segments; the cap is {cap}")
        if not out.body:
            out.problems.append("SMS text is empty")
    elif channel == Channel.PUSH:
        out.subject = bidi.mark_text(text("push_title", _override(ctx.row, ctx.variant, "push_title")).strip(),
                                     ctx.row.locale)
        out.body = bidi.mark_text(text("push_body", _override(ctx.row, ctx.variant, "push_body")).strip(),
                                  ctx.row.locale)
        if not out.body:
            out.problems.append("push body is empty")
    elif channel == Channel.VOICE:
        # Plain text with its variables rendered as text: the voice provider XML-escapes the whole of
        # it into TwiML/SSML, so neither the author nor a variable can inject markup (<Play>, <Dial>).
        out.body = " ".join(text("voice_text", _override(ctx.row, ctx.variant, "voice_text")).split())
        if not out.body:
            out.problems.append("voice text is empty")
    elif channel == Channel.IN_APP:
        content = ctx.row.in_app_content or {}

        def in_app(source: str, key: str) -> str:
            # The inbox UI shows these strings, often in a web view: text is HTML with its variables
            # escaped, as in email; a link is rendered as is and must pass the app-link policy.
            digest = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
            if not is_link_key(key):
                fn = _compiled(ctx.version, ctx.row, f"in_app_html:{digest}", source, html=True)
                return rendering.render_part(fn, variables, helpers, out.problems)
            link = text(f"in_app:{digest}", source)
            checked = safe_link(link)
            if checked != link:
                out.problems.append(f"unsafe URL removed: {link[:60]}")
            return checked

        out.data = rendering.render_json(content, in_app)
        for key in ("title", "body"):  # the text the inbox shows; links never get a mark
            if isinstance(out.data.get(key), str):
                out.data[key] = bidi.mark_text(out.data[key], ctx.row.locale)
        out.subject = str(out.data.get("title", ""))
        out.body = str(out.data.get("body", ""))
        if not content:
            out.problems.append("in-app content is empty")
        elif not out.body:
            out.problems.append("in-app content has no body")
    else:
        out.problems.append(f"channel {channel} has no template content")
        return out
    # The limits the send path enforces (comms.addresses), so preview and submit see every refusal.
    out.problems += [p.message for p in content_limit_problems(
        channel, subject=out.subject, body=out.body, body_html=out.body_html, data=out.data)]
    return out


def blocking_problems(rendered: rendering.Rendered) -> list[str]:
    return [p for p in rendered.problems if not p.startswith(("warning:", "unsafe URL removed"))]


@dataclass
class SendRender:
    version: TemplateVersion
    locale: str
    variant: str
    content: rendering.Rendered


def active_version(*, tenant: Any, template_key: str) -> TemplateVersion:
    # ``open_rollout_id``: whether a staged rollout is open (templates_app.rollout), in the same query.
    open_rollout = TemplateRollout.objects.filter(template=OuterRef("pk"), state__in=TemplateRollout.OPEN_STATES)
    template = Template.objects.filter(tenant=tenant, template_key=template_key).select_related(
        "active_version").annotate(open_rollout_id=Subquery(open_rollout.values("pk")[:1])).first()
    if template is None or template.active_version is None:
        raise errors.TemplateNotFound(f"No active template '{template_key}'.", details={"template": template_key})
    version = template.active_version
    version.template = template
    return version


def render_for_send(*, version: TemplateVersion, channel: str, variables: dict, locale: str, timezone: str,
                    recipient_key: str, variant: str = "") -> SendRender:
    """Validate variables, pick locale and variant, render; raises a typed error when unsendable."""
    template = version.template
    if channel not in template.channels:
        raise errors.TemplateChannel(f"Template '{template.template_key}' has no {channel} content.",
                                     details={"channels": template.channels})
    check_variables(version, variables)
    row = pick_locale(version, locale)
    # A forced variant (an A/B campaign's winner, sent to the rest) wins over the sticky split, even at weight 0.
    forced = [v for v in (version.experiment or {}).get("variants", []) if variant and v.get("key") == variant]
    chosen = forced[0] if forced else pick_variant(version, recipient_key)
    try:
        rendered = render_channel(RenderContext(version, row, chosen, variables, timezone or "UTC"), channel)
    except rendering.TemplateSyntaxError as exc:
        raise errors.TemplateInvalid(str(exc)) from None
    problems = blocking_problems(rendered)
    if problems:
        raise errors.TemplateRenderFailed(problems[0], details={"problems": problems})
    return SendRender(version=version, locale=row.locale, variant=(chosen or {}).get("key", ""), content=rendered)


def artifact_store(*, tenant_id: Any, message_id: Any, render: SendRender, channel: str) -> str:
    """Write the rendered message once (immutably) to the artifact storage; returns its name."""
    name = f"{tenant_id}/{str(message_id)[:8]}/{message_id}.json"
    storage = storages["artifacts"]
    if storage.exists(name):
        return name  # written already: an artifact is never replaced
    content = render.content
    payload = {
        "message_id": str(message_id), "channel": channel, "template": render.version.template.template_key,
        "template_version": render.version.version, "locale": render.locale, "variant": render.variant,
        "subject": content.subject, "body": content.body, "body_html": content.body_html, "data": content.data,
    }
    return storage.save(name, ContentFile(json.dumps(payload, ensure_ascii=False).encode()))

"""Locale coverage of a template: which locales carry which channels, which variables each reads,
and which locales the tenant requires but the active version lacks (localization debt, seed 001).

A locale row holds every channel's content, but the send path picks the row by locale, not per
channel (services/render.py ``pick_locale``): a German row without SMS text makes a German SMS
unsendable. So coverage is counted per (locale, channel), and so are variables: a translation that
drops ``{{order.id}}`` from the SMS, or reads a variable the default locale never uses, is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from comms.enums import Channel
from comms.errors import error_class
from templates_app import rendering
from templates_app.models import Template, TemplateLocale, TemplateVersion

TemplateVersionUnknown = error_class("COMMS_TEMPLATE_VERSION_UNKNOWN", 404, "The template has no such version.")
TemplateLocaleUnknown = error_class("COMMS_TEMPLATE_LOCALE_UNKNOWN", 404,
                                    "The version has no content in that locale.")
DiffInvalid = error_class("COMMS_DIFF_INVALID", 400,
                          "Compare two locales (a=de&b=fr) or two versions (a=v2&b=v3).")

# The parts each channel is rendered from (services/render.py render_channel). Webhook sends carry
# the caller's variables, not template content, so they have no locale to cover.
CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    Channel.EMAIL: ("subject", "body_html", "body_text"),
    Channel.SMS: ("sms_text",),
    Channel.PUSH: ("push_title", "push_body"),
    Channel.VOICE: ("voice_text",),
    Channel.IN_APP: ("in_app_content",),
}
# Without these the channel renders nothing and the send is refused ("email has no body", …).
_BODY_PARTS = {Channel.EMAIL: ("body_html", "body_text"), Channel.SMS: ("sms_text",), Channel.PUSH: ("push_body",),
               Channel.VOICE: ("voice_text",), Channel.IN_APP: ("in_app_content",)}
_VERSION_TOKEN = re.compile(r"[vV]?(\d{1,9})")
_LOCALE_TOKEN = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,3}")


def localised_channels(template: Template) -> list[str]:
    return [c for c in template.channels if c in CHANNEL_PARTS]


def has_channel(row: TemplateLocale, channel: str) -> bool:
    return any(getattr(row, part) for part in _BODY_PARTS.get(channel, ()))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def row_variables(row: TemplateLocale, channel: str) -> set[str]:
    """Variable paths (order.url) one locale's content for one channel reads, by the schema check's own
    scan (``rendering.referenced_variables``: names inside {{#each}} are the item's, not the template's)."""
    names: set[str] = set()
    for part in CHANNEL_PARTS.get(channel, ()):
        for source in _strings(getattr(row, part)):
            names |= rendering.referenced_variables(source, paths=True)
    return names


# --- required locales (tenant setting) ------------------------------------------------------------------

def required_locales(tenant: Any, channel: str) -> list[str]:
    """The tenant's required locales for a channel: the "*" list plus the channel's own."""
    declared = tenant.required_locales or {}
    groups = {"*": declared} if isinstance(declared, list) else declared
    seen: list[str] = []
    for locale in [*groups.get("*", []), *groups.get(channel, [])]:
        if locale not in seen:
            seen.append(locale)
    return seen


def covering_row(rows: dict[str, TemplateLocale], locale: str, channel: str) -> TemplateLocale | None:
    """The row a recipient in ``locale`` gets for ``channel`` before any template-default fallback:
    the exact tag, then its language (de-AT is served by de, as pick_locale does; de is not served by de-AT)."""
    for candidate in dict.fromkeys((locale, locale.replace("_", "-").split("-")[0])):
        row = rows.get(candidate)
        if row is not None and has_channel(row, channel):
            return row
    return None


def missing_required(version: TemplateVersion, rows: dict[str, TemplateLocale] | None = None) -> list[dict]:
    """[{channel, locale}] the tenant requires but this version cannot serve."""
    template = version.template
    rows = rows if rows is not None else {r.locale: r for r in version.locales.all()}
    return [{"channel": channel, "locale": locale}
            for channel in localised_channels(template)
            for locale in required_locales(template.tenant, channel)
            if covering_row(rows, locale, channel) is None]


# --- coverage -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    present: bool
    variables: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # read by the default locale, not by this one
    extra: tuple[str, ...] = ()  # read by this one, not by the default locale

    @property
    def flagged(self) -> bool:
        return bool(self.missing or self.extra)

    def as_dict(self) -> dict:
        return {"present": self.present, "variables": list(self.variables), "missing": list(self.missing),
                "extra": list(self.extra), "flagged": self.flagged}


def reference_locale(template: Template, rows: dict[str, TemplateLocale]) -> str:
    """The locale others are compared with: the template default, or its language, or the first."""
    for candidate in (template.default_locale, template.default_locale.split("-")[0]):
        if candidate in rows:
            return candidate
    return next(iter(sorted(rows)), "")


def version_coverage(version: TemplateVersion) -> dict:
    """Per locale and channel: present or not, variables read, and the difference from the default."""
    template = version.template
    rows = {r.locale: r for r in version.locales.all()}
    channels = localised_channels(template)
    reference = reference_locale(template, rows)
    ref_vars = {c: row_variables(rows[reference], c) for c in channels if reference and has_channel(rows[reference], c)}
    locales = []
    for locale in sorted(rows, key=lambda loc: (loc != reference, loc)):
        row, cells = rows[locale], {}
        for channel in channels:
            if not has_channel(row, channel):
                cells[channel] = Cell(False)
                continue
            names = row_variables(row, channel)
            base = ref_vars.get(channel)
            cells[channel] = Cell(True, tuple(sorted(names)),
                                  tuple(sorted(base - names)) if base is not None else (),
                                  tuple(sorted(names - base)) if base is not None else ())
        locales.append({"locale": locale, "default": locale == reference,
                        "channels": {c: cell.as_dict() for c, cell in cells.items()},
                        "flagged": any(cell.flagged for cell in cells.values())})
    return {"template": template.template_key, "version": version.version, "status": version.status,
            "active": version.pk == template.active_version_id, "default_locale": template.default_locale,
            "reference_locale": reference, "channels": channels, "locales": locales,
            "required": {c: required_locales(template.tenant, c) for c in channels},
            "missing_required": missing_required(version, rows)}


def pick_version(template: Template, number: Any = None) -> TemplateVersion:
    """The given version number ("3" or "v3"), else the active version, else the newest."""
    if number in (None, ""):
        version = template.active_version or template.versions.order_by("-version").first()
        if version is None:
            raise TemplateVersionUnknown(f"Template '{template.template_key}' has no versions yet.")
        version.template = template
        return version
    match = _VERSION_TOKEN.fullmatch(str(number).strip())
    version = template.versions.filter(version=int(match.group(1))).first() if match else None
    if version is None:
        raise TemplateVersionUnknown(f"Template '{template.template_key}' has no version {str(number)[:20]!r}.",
                                     details={"version": str(number)[:20],
                                              "versions": list(template.versions.values_list("version", flat=True))})
    version.template = template
    return version


def template_coverage(template: Template, number: Any = None) -> dict:
    return version_coverage(pick_version(template, number))


# --- what a diff compares -------------------------------------------------------------------------------

def parse_side(token: str) -> tuple[str, str]:
    """("version", "3") for v3/3, ("locale", "de-AT") for a locale tag; anything else is a typed error."""
    token = (token or "").strip()
    if not token:
        raise DiffInvalid("Give both sides: ?a=…&b=… (two locales or two versions).")
    match = _VERSION_TOKEN.fullmatch(token)
    if match:
        return "version", match.group(1)
    if _LOCALE_TOKEN.fullmatch(token):
        return "locale", token.replace("_", "-")
    raise DiffInvalid(f"{token[:40]!r} is neither a version (v3) nor a locale (de-AT).", details={"value": token[:40]})


def locale_debt(*, tenant: Any = None) -> list[dict]:
    """Every active template (of one tenant, or all) lacking a locale its tenant requires, per channel."""
    templates = Template.objects.filter(active_version__isnull=False).select_related("tenant", "active_version") \
        .prefetch_related("active_version__locales").order_by("tenant__slug", "template_key")
    if tenant is not None:
        templates = templates.filter(tenant=tenant)
    debt = []
    for template in templates:
        version = template.active_version
        version.template = template
        for gap in missing_required(version):
            debt.append({"tenant": template.tenant.slug, "template": template.template_key,
                         "version": version.version, **gap})
    return debt

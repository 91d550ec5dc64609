"""The template admin's locale coverage table and its side-by-side locale/version compare page.

A mixin for TemplateAdmin (admin.py keeps one ModelAdmin per model): it adds the read-only
``locale_coverage`` field and the ``<pk>/locales/diff/`` page. Both draw what the API returns
(templates_app/locales.py, locale_diff.py), so the reviewer and a script see the same flags.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from comms.errors import CommsError
from templates_app.locale_diff import locale_diff
from templates_app.locales import pick_version, version_coverage
from templates_app.models import Template


def _cell(cell: dict, required: bool) -> SafeString:
    if not cell["present"]:
        state, text = ("required-missing", "missing (required)") if required else ("absent", "—")
        return format_html('<td data-state="{}">{}</td>', state, text)
    notes = []
    if cell["missing"]:
        notes.append(format_html('<span class="lc-drop">drops {}</span>', ", ".join(cell["missing"])))
    if cell["extra"]:
        notes.append(format_html('<span class="lc-add">adds {}</span>', ", ".join(cell["extra"])))
    return format_html('<td data-state="{}" title="{}">✓ {}</td>', "flagged" if notes else "ok",
                       ", ".join(cell["variables"]), format_html_join(" ", "{}", ((n,) for n in notes)))


def coverage_table(template: Template) -> SafeString:
    """Rows: locales of the live (else newest) version, then required locales it lacks; columns: channels."""
    try:
        version = pick_version(template)
    except CommsError:
        return format_html("{}", "—")
    data = version_coverage(version)
    channels = data["channels"]
    missing = {(m["locale"], m["channel"]) for m in data["missing_required"]}
    diff_url = reverse("admin:templates_app_template_locale_diff", args=[template.pk])
    reference = data["reference_locale"]
    rows = []
    for row in data["locales"]:
        cells = format_html_join("", "{}", ((_cell(row["channels"][c], (row["locale"], c) in missing),)
                                            for c in channels))
        compare = "" if row["default"] else format_html(
            '<a href="{}?version={}&amp;a={}&amp;b={}">compare with {}</a>', diff_url, version.version, reference,
            row["locale"], reference)
        rows.append(format_html('<tr data-locale="{}"{}><th scope="row">{}{}</th>{}<td>{}</td></tr>', row["locale"],
                                format_html(' class="{}"', "lc-flagged") if row["flagged"] else "", row["locale"],
                                " (default)" if row["default"] else "", cells, compare))
    present = {row["locale"] for row in data["locales"]}
    for locale in dict.fromkeys(m["locale"] for m in data["missing_required"]):
        if locale in present:
            continue  # its row above already marks the channels it lacks
        cells = format_html_join("", "{}", (
            (format_html('<td data-state="{}">{}</td>', *(("required-missing", "missing (required)")
                                                        if (locale, c) in missing else ("absent", "—"))),)
            for c in channels))
        rows.append(format_html('<tr data-locale="{}" class="lc-required"><th scope="row">{}</th>{}<td></td></tr>',
                                locale, locale, cells))
    head = format_html_join("", "<th scope='col'>{}</th>", ((c,) for c in channels))
    newest = max((v.version for v in template.versions.all()), default=version.version)
    pair = (version.version, newest) if newest != version.version else (version.version - 1, version.version)
    compare = format_html(" · <a href='{}?a=v{}&amp;b=v{}'>compare v{} with v{}</a>", diff_url, *pair, *pair) \
        if pair[0] >= 1 else ""
    caption = format_html("v{}{} · ✓ has content · drops/adds: variables compared with {}{}", version.version,
                          " (live)" if data["active"] else "", reference or "—", compare)
    return format_html('<div class="lc-box"><table id="locale-coverage"><caption>{}</caption><thead><tr>'
                       '<th scope="col">locale</th>{}<th></th></tr></thead><tbody>{}</tbody></table></div>',
                       caption, head, format_html_join("", "{}", ((r,) for r in rows)))


class LocaleCoverageAdminMixin:
    """Adds the coverage field and the compare page to TemplateAdmin."""

    class Media:
        css = {"all": ("templates_app/locales.css",)}

    def locale_coverage(self, obj: Template) -> SafeString:
        return coverage_table(obj)

    locale_coverage.short_description = "Locale coverage"

    def get_urls(self):
        own = [path("<int:pk>/locales/diff/", self.admin_site.admin_view(self.locale_diff_view),
                    name="templates_app_template_locale_diff")]
        return own + super().get_urls()

    def locale_diff_view(self, request: HttpRequest, pk: int):
        template = get_object_or_404(Template.objects.select_related("active_version", "tenant"), pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        params = request.GET
        shown, diff, error = None, None, ""
        try:
            shown = pick_version(template, params.get("version"))
            a = params.get("a") or template.default_locale
            b = params.get("b") or next((r.locale for r in shown.locales.all() if r.locale != a), a)
            diff = locale_diff(template, a=a, b=b, version=params.get("version"), locale=params.get("locale", ""))
        except CommsError as exc:  # unknown locale or version: say so on the page, as the API does
            error = exc.message
        versions = list(template.versions.order_by("-version"))
        options = [(f"v{v.version}", f"v{v.version} · {v.get_status_display()}"
                    + (" · live" if v.pk == template.active_version_id else "")) for v in versions]
        context = {**self.admin_site.each_context(request), "template": template, "diff": diff, "error": error,
                   "shown": shown, "versions": versions, "version_options": options,
                   "locales": [r.locale for r in shown.locales.all()] if shown else [],
                   "a": _token(diff, "a") if diff else params.get("a", ""),
                   "b": _token(diff, "b") if diff else params.get("b", ""), "opts": template._meta,
                   "title": f"Compare locales and versions of {template.template_key}"}
        return TemplateResponse(request, "admin/templates_app/template/locale_diff.html", context)


def _token(diff: dict, side: str) -> str:
    """The select's value for what was compared (a locale tag as stored, or vN)."""
    return diff[side]["locale"] if diff["mode"] == "locale" else f"v{diff[side]['version']}"

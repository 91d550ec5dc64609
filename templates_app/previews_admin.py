"""Preview images on a version's admin page (author and approver): light and dark side by side, mobile,
and the same for every right-to-left locale. A mixin so templates_app/admin.py only names it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from comms import errors
from templates_app import bidi, previews
from templates_app.models import TemplateVersion
from templates_app.services.previews import version_preview_image, version_previews

# Light and dark next to each other (the comparison the reviewer makes), then the phone.
_ORDER = ("desktop", "dark", "mobile")


class PreviewImagesAdminMixin:
    """Adds the ``rendered_previews`` read-only field and the image URL the field's <img> tags load."""

    @staticmethod
    def _image_url(version: TemplateVersion, locale: str, mode: str) -> str:
        return reverse("admin:templates_app_templateversion_preview_image", args=[version.pk, locale, mode])

    def rendered_previews(self, obj: TemplateVersion):
        if obj is None or obj.pk is None:
            return ""
        try:
            shots = version_previews(version=obj)
        except previews.PreviewUnavailable as exc:
            return format_html('<p class="comms-shots-unavailable" data-reason="{}">{}</p>',
                               exc.details.get("reason", ""), exc.message)
        except errors.CommsError as exc:  # no email channel, no HTML, a template that does not compile
            return format_html('<p class="comms-shots-none">{}</p>', exc.message)
        sections = []
        for locale, modes in shots.items():
            rtl = bidi.is_rtl(locale)
            figures = format_html_join("", (
                '<figure class="comms-shot" data-mode="{}" data-width="{}"><a href="{}" target="_blank" rel="noopener">'
                '<img src="{}" alt="{} preview of {} [{}]" width="{}" height="{}" loading="lazy"></a>'
                '<figcaption>{}</figcaption></figure>'), (
                (mode, modes[mode].width, url, url, previews.MODES[mode].label, obj, locale, modes[mode].width,
                 modes[mode].height, previews.MODES[mode].label)
                for mode in _ORDER if mode in modes
                for url in [self._image_url(obj, locale, mode)]))
            sections.append(format_html(
                '<section class="comms-shot-locale" data-locale="{}" data-dir="{}"><h4>{}{}</h4>'
                '<div class="comms-shot-row">{}</div></section>',
                locale, "rtl" if rtl else "ltr", locale, " — right to left" if rtl else "", figures))
        rendered_at = min((s.rendered_at for modes in shots.values() for s in modes.values()), default=None)
        note = format_html('<p class="comms-shots-note">Headless Chromium, sample variables, remote content blocked '
                           '(as a client that blocks images shows it). Taken {}.</p>',
                           rendered_at.strftime("%Y-%m-%d %H:%M UTC") if rendered_at else "—")
        return format_html('<div class="comms-shots">{}{}</div>', note,
                           format_html_join("", "{}", ((s,) for s in sections)))

    rendered_previews.short_description = "Screenshots (Chromium)"

    def get_urls(self):
        own = [path("<int:pk>/preview-image/<str:locale>/<str:mode>.png",
                    self.admin_site.admin_view(self.preview_image_view),
                    name="templates_app_templateversion_preview_image")]
        return own + super().get_urls()

    def preview_image_view(self, request: HttpRequest, pk: int, locale: str, mode: str) -> HttpResponse:
        version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        try:
            shot = version_preview_image(version=version, locale=locale, mode=mode)
        except errors.CommsError as exc:
            return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
        response = HttpResponse(bytes(shot.png), content_type="image/png")
        response["Cache-Control"] = "private, no-cache"  # a draft's image changes with its content
        return response

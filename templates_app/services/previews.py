"""Preview images of an email version: rendered from sample data, screenshot in Chromium, kept per version.

Drafts are screenshot when a reviewer looks (the admin page, the API) and again only when the rendered
HTML changed (``html_sha256``). Submitting a version queues one task that stores its images with the
approval request, so the approver's page shows them without waiting; if no worker ran it, the page
renders them on first view. Which locales get images: the default locale and every right-to-left
locale of the version (the RTL layout is the one a reviewer most needs to see); the API renders any
locale of the version on demand.
"""

from __future__ import annotations

import hashlib
import logging

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.enums import Channel
from templates_app import bidi, previews, rendering
from templates_app.models import TemplateLocale, TemplatePreview, TemplateVersion
from templates_app.services.render import RenderContext, render_channel

log = logging.getLogger(__name__)
PREVIEW_TASK = "templates_app.tasks.version_previews_render"


def preview_locales(version: TemplateVersion) -> list[str]:
    """The default locale (or the first one) and every right-to-left locale the version has."""
    present = [row.locale for row in version.locales.all().order_by("locale")]
    if not present:
        return []
    first = version.template.default_locale if version.template.default_locale in present else present[0]
    return [first] + [loc for loc in present if loc != first and bidi.is_rtl(loc)]


def _email_html(version: TemplateVersion, row: TemplateLocale) -> str:
    if Channel.EMAIL not in version.template.channels:
        raise errors.TemplateChannel(f"Template '{version.template.template_key}' has no email channel to preview.",
                                     details={"channels": version.template.channels})
    try:
        out = render_channel(RenderContext(version, row, None, version.sample_variables or {}), Channel.EMAIL)
    except rendering.TemplateSyntaxError as exc:
        raise errors.TemplateInvalid(str(exc)) from None
    if not out.body_html:
        raise errors.TemplateChannel(f"v{version.version} [{row.locale}] has no HTML body to preview.",
                                     details={"locale": row.locale})
    return out.body_html


def version_previews(*, version: TemplateVersion, locales: list[str] | None = None,
                     ) -> dict[str, dict[str, TemplatePreview]]:
    """``{locale: {mode: TemplatePreview}}`` (PNG deferred), screenshooting only what is missing or stale.

    Raises PreviewLocaleUnknown for a locale the version lacks, TemplateChannel when there is no email
    HTML, PreviewUnavailable when Chromium cannot run (nothing is stored then).
    """
    rows = {row.locale: row for row in version.locales.all()}
    wanted = preview_locales(version) if locales is None else locales
    for loc in wanted:
        if loc not in rows:
            raise previews.PreviewLocaleUnknown(f"v{version.version} has no content in locale '{loc[:35]}'.",
                                                details={"locale": loc[:35], "locales": sorted(rows)})
    html = {loc: _email_html(version, rows[loc]) for loc in wanted}
    digest = {loc: hashlib.sha256(text.encode()).hexdigest() for loc, text in html.items()}
    stored: dict[str, dict[str, TemplatePreview]] = {loc: {} for loc in wanted}
    for shot in TemplatePreview.objects.filter(version=version, locale__in=wanted).defer("png"):
        if shot.html_sha256 == digest[shot.locale]:
            stored[shot.locale][shot.mode] = shot
    stale = {loc: html[loc] for loc in wanted if set(stored[loc]) != set(previews.MODES)}
    if stale:
        for (loc, mode), image in previews.screenshots(stale).items():
            stored[loc][mode] = _store(version, loc, mode, image, digest[loc])
    return stored


def _store(version: TemplateVersion, locale: str, mode: str, image: previews.Shot, digest: str) -> TemplatePreview:
    values = {"png": image.png, "width": image.width, "height": image.height, "html_sha256": digest,
              "direction": bidi.direction(locale), "rendered_at": timezone.now()}
    try:
        with transaction.atomic():
            shot, _ = TemplatePreview.objects.update_or_create(version=version, locale=locale, mode=mode,
                                                               defaults=values)
    except IntegrityError:  # two viewers rendered the same draft at once: theirs is as good as ours
        shot = TemplatePreview.objects.get(version=version, locale=locale, mode=mode)
    return shot


def version_preview_image(*, version: TemplateVersion, locale: str, mode: str) -> TemplatePreview:
    """One image with its PNG bytes (rendered now when missing or stale)."""
    previews.mode_get(mode)  # an unknown mode is refused before anything is rendered
    version_previews(version=version, locales=[locale])
    return TemplatePreview.objects.get(version=version, locale=locale, mode=mode)


def version_previews_store(*, version_id: int) -> int:
    """The task's work at submit: every preview locale's images; returns how many images exist."""
    version = TemplateVersion.objects.select_related("template").filter(pk=version_id).first()
    if version is None or Channel.EMAIL not in version.template.channels:
        return 0
    try:
        done = version_previews(version=version)
    except (previews.PreviewUnavailable, errors.TemplateChannel, errors.TemplateInvalid) as exc:
        log.warning("previews of %s not stored: %s", version, exc)
        return 0
    return sum(len(modes) for modes in done.values())


def version_previews_request(*, version: TemplateVersion) -> None:
    """Queue the images of a submitted version after commit (the approver's page shows them).

    A broker that is down must not undo a submit: the approval page renders missing images itself.
    """
    if Channel.EMAIL not in version.template.channels:
        return

    def send() -> None:
        try:
            current_app.send_task(PREVIEW_TASK, args=[version.pk], queue="p3")
        except Exception as exc:  # kombu raises OperationalError and friends; the page is the fallback
            log.warning("could not queue previews of %s: %s", version, exc)

    transaction.on_commit(send)

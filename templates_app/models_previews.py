"""Chromium screenshots of an email version (issue 20): what the approver looks at instead of HTML source.

One row per (version, locale, mode). The PNG is kept in the database next to the version it shows, so it
is written in the same transaction as its metadata and goes wherever the version goes (no orphan files).
``html_sha256`` is the digest of the rendered HTML the image was taken from: a draft that changed is
rendered again, a submitted (frozen) version is rendered once, at submit.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class TemplatePreview(models.Model):
    class Mode(models.TextChoices):
        DESKTOP = "desktop", "Desktop"
        MOBILE = "mobile", "Mobile (360 px)"
        DARK = "dark", "Dark mode"

    version = models.ForeignKey("templates_app.TemplateVersion", on_delete=models.CASCADE, related_name="previews")
    locale = models.CharField(max_length=35)
    mode = models.CharField(max_length=16, choices=Mode.choices)
    direction = models.CharField(max_length=3, default="ltr")
    png = models.BinaryField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    html_sha256 = models.CharField(max_length=64)
    rendered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "locale", "mode"], name="template_preview_unique")]

    def __str__(self) -> str:
        return f"{self.version_id} [{self.locale}] {self.mode}"

"""Spam scores for template email content, in previews and at submit (issue 19).

The scorer (SpamAssassin over spamc) lives in delivery, which sits above templates_app; it is named
in settings (COMMS_SPAM_SCORER) and imported by dotted path so the import rule holds. A scorer that
cannot answer returns ``available: False``: the preview says "spam check unavailable" and a submit
goes ahead (the approver sees that nothing was checked).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string


def email_spam_check(*, subject: str, html: str, text: str) -> dict[str, Any]:
    """The scorer's verdict as a JSON-able dict with a human ``label`` and the time it was taken."""
    result = import_string(settings.COMMS_SPAM_SCORER)(subject=subject, html=html, text=text)
    return {**result.as_dict(), "label": result.label, "checked_at": timezone.now().isoformat()}


def preview_spam(preview: dict) -> dict | None:
    """Score the email channel of a rendered preview (None when the template has no email to score)."""
    email = preview.get("channels", {}).get("email")
    if not email or "html" not in email:
        return None
    return email_spam_check(subject=email.get("subject", ""), html=email.get("html", ""), text=email.get("text", ""))

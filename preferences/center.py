"""The preference center as a use case: what the page shows, and saving the submitted form."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from comms import errors
from comms.models import Recipient
from preferences import catalogue
from preferences.models import Frequency, QuietHours, UpdatedBy, UserPreference
from preferences.services import CHANNELS, preferences_update, quiet_hours_set, unsubscribe

CHANNEL_LABELS = {"email": "Email", "sms": "SMS", "push": "Push", "in_app": "In-app"}
# The page's columns. Voice is set through the API (PUT /preferences) for now: its switch needs its own
# TCPA consent wording (prerecorded calls) translated into every page language before it is shown.
PAGE_CHANNELS = tuple(c for c in CHANNELS if c in CHANNEL_LABELS)


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
                 + ["UTC"])


def sms_consent_text() -> str:
    # TCPA express written consent: what the person agreed to, shown next to the SMS switches.
    return _("By switching on text messages for a marketing category you agree to receive recurring "
             "automated marketing texts at your number. Consent is not a condition of purchase. Reply STOP "
             "to cancel, HELP for help. Msg & data rates may apply.")


def page_context(*, recipient: Recipient) -> dict[str, Any]:
    rows = {(p.channel, p.category): p for p in UserPreference.objects.filter(recipient=recipient)}
    general = QuietHours.objects.filter(recipient=recipient, category="").first()
    categories = []
    for cat in catalogue.categories(recipient.tenant_id):
        if not cat.user_visible:
            continue
        cells, frequency = [], Frequency.REALTIME
        for channel in PAGE_CHANNELS:
            p = rows.get((channel, cat.key))
            if p and p.frequency != Frequency.REALTIME:
                frequency = p.frequency
            cells.append({"channel": channel, "label": CHANNEL_LABELS[channel], "name": f"pref:{cat.key}:{channel}",
                          "on": True if cat.critical else (p.enabled if p else cat.default_for(channel))})
        categories.append({"key": cat.key, "name": cat.name, "description": cat.description, "critical": cat.critical,
                           "marketing": cat.marketing, "cells": cells, "frequency": frequency})
    return {
        "recipient": recipient, "categories": categories, "channels": [CHANNEL_LABELS[c] for c in PAGE_CHANNELS],
        "frequencies": Frequency.choices,
        "quiet": {"enabled": general.enabled if general else True,
                  "start": (general.start if general else dt.time(21)).strftime("%H:%M"),
                  "end": (general.end if general else dt.time(8)).strftime("%H:%M"),
                  "timezone": (general.timezone if general and general.timezone else recipient.timezone) or "UTC"},
        "timezones": timezones(), "sms_consent_text": sms_consent_text(),
    }


def _time(value: str, field: str) -> dt.time:
    try:
        return dt.time.fromisoformat((value or "").strip())
    except ValueError:
        raise errors.ValidationFailed(_("Enter a time like 21:00."), details={"field": field}) from None


@transaction.atomic
def preference_center_save(*, recipient: Recipient, form: Any, ip: str | None, user_agent: str) -> str:
    """Apply a submitted preference-center form; returns what happened ("saved"/"unsubscribed_all").

    Unchecked boxes are not submitted, so every visible, non-critical switch is set from the form.
    """
    if form.get("action") == "unsubscribe_all":
        for cat in catalogue.categories(recipient.tenant_id):
            if cat.marketing:
                unsubscribe(recipient=recipient, category=cat.key, source="preference_center", ip=ip,
                            user_agent=user_agent)
        return "unsubscribed_all"
    changes = []
    for cat in catalogue.categories(recipient.tenant_id):
        if cat.critical or not cat.user_visible:
            continue
        frequency = form.get(f"freq:{cat.key}") or Frequency.REALTIME
        if frequency not in Frequency.values:
            raise errors.ValidationFailed(_("Unknown frequency."), details={"field": f"freq:{cat.key}"})
        for channel in PAGE_CHANNELS:  # a channel the page does not show keeps its value
            changes.append({"category": cat.key, "channel": channel,
                            "enabled": form.get(f"pref:{cat.key}:{channel}") == "on", "frequency": frequency})
    preferences_update(recipient=recipient, changes=changes, updated_by=UpdatedBy.USER, source="preference_center",
                       ip=ip, user_agent=user_agent, consent_text=sms_consent_text())
    tz = (form.get("timezone") or "").strip()
    if tz and tz not in zoneinfo.available_timezones():
        raise errors.InvalidTimezone(_("Choose a time zone from the list."), details={"field": "timezone"})
    start, end = _time(form.get("quiet_start"), "quiet_start"), _time(form.get("quiet_end"), "quiet_end")
    if start == end:
        raise errors.InvalidQuietHours(_("Quiet hours need a start different from the end."),
                                       details={"field": "quiet_end"})
    quiet_hours_set(recipient=recipient, enabled=form.get("quiet_enabled") == "on", start=start, end=end,
                    timezone_name=tz)
    return "saved"

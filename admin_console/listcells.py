"""Compact cells for admin change lists: every list fits a 1280 px screen on one line per row.

A cell shows the short form and keeps the full value in its title (hover) and in the row's page,
so nothing is lost by clipping: a UUID shows its first 8 hex digits (as git shows commits), a
timestamp drops the year, a long text is cut with an ellipsis by CSS (admin_console/admin.css).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from comms.enums import Priority


def short_id(value) -> SafeString:
    """First 8 characters of an id (full id in the title); unique enough to spot, exact on the row's page."""
    text = str(value)
    return format_html('<span class="comms-id" title="{}">{}</span>', text, text[:8])


def clipped(value, *, narrow: bool = False) -> SafeString | str:
    """A long text on one line, cut with an ellipsis (10em, or 7em when narrow); the whole text in the title."""
    text = "" if value is None else str(value)
    if not text:
        return ""
    return format_html('<span class="comms-clip{}" title="{}">{}</span>', " comms-clip-narrow" if narrow else "",
                       text, text)


def compact_time(value: datetime | None) -> SafeString | str:
    """`12-04 22:38` (UTC, the admin's time zone) with the full ISO 8601 time in the title."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return format_html('<span title="{}">{}</span>', local.isoformat(), local.strftime("%m-%d %H:%M"))


def priority_short(value: int) -> SafeString:
    """`P2` with its name (`P2 normal`) in the title: the filter beside the list names them all."""
    priority = Priority(value)
    return format_html('<span title="{}">P{}</span>', priority.label, int(priority))

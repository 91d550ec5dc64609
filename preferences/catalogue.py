"""The category catalogue as plain values, cached per process for a few seconds.

Every send consults it, so it must cost no query per message: the whole catalogue (built-in rows
plus each tenant's overrides) is small and read once per ``CACHE_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field

from comms import errors

CACHE_SECONDS = 5.0
_lock = threading.Lock()
_cache: dict[str, object] = {"at": 0.0, "rows": {}}


@dataclass(frozen=True)
class CategoryInfo:
    key: str
    name: str
    critical: bool = False
    marketing: bool = False
    double_opt_in: bool = False
    defaults: dict = field(default_factory=dict)
    respects_quiet_hours: bool = True
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    user_visible: bool = True
    order: int = 100
    description: str = ""

    def default_for(self, channel: str) -> bool:
        # A category that names no voice default follows its SMS one (both ring the same phone):
        # marketing calls stay opt-in wherever marketing texts are.
        if channel == "voice" and "voice" not in self.defaults:
            channel = "sms"
        return bool(self.defaults.get(channel, channel in ("in_app", "webhook")))


# What a send with a category the catalogue does not know is treated as: an ordinary,
# opt-out-able, non-marketing category (the API refuses unknown categories before that).
UNKNOWN = CategoryInfo(key="", name="", defaults={"email": True, "sms": True, "push": True, "in_app": True,
                                                   "webhook": True}, respects_quiet_hours=False)


def builtin() -> dict:
    """Seed 001's catalogue as shipped (migration 0002 writes the same rows for admins to edit);
    the base under the database rows, so a send never depends on those rows existing."""
    from preferences.migrations import _catalogue  # noqa: PLC0415

    rows = {}
    for order, (key, name, critical, marketing, doi, defaults, quiet, override) in enumerate(_catalogue.CATALOGUE):
        start, end = (dt.time.fromisoformat(override[0]), dt.time.fromisoformat(override[1])) if override else (None, None)
        rows[(None, key)] = CategoryInfo(key=key, name=name, critical=critical, marketing=marketing, double_opt_in=doi,
                                         defaults=dict(defaults), respects_quiet_hours=quiet, quiet_start=start,
                                         quiet_end=end, user_visible=key != "system", order=order)
    return rows


def _load() -> dict:
    from preferences.models import NotificationCategory

    rows: dict = builtin()
    for c in NotificationCategory.objects.all():
        rows[(str(c.tenant_id) if c.tenant_id else None, c.key)] = CategoryInfo(
            key=c.key, name=c.name, critical=c.critical, marketing=c.marketing, double_opt_in=c.double_opt_in,
            defaults=dict(c.defaults), respects_quiet_hours=c.respects_quiet_hours, quiet_start=c.quiet_start,
            quiet_end=c.quiet_end, user_visible=c.user_visible, order=c.order, description=c.description)
    return rows


def _rows() -> dict:
    now = time.monotonic()
    with _lock:
        if now - _cache["at"] < CACHE_SECONDS:
            return _cache["rows"]  # type: ignore[return-value]
    rows = _load()
    with _lock:
        _cache.update(at=now, rows=rows)
    return rows


def clear_cache() -> None:
    with _lock:
        _cache.update(at=0.0, rows={})


def category(tenant_id, key: str) -> CategoryInfo:
    """The tenant's category `key` (its own row, else the built-in one, else UNKNOWN)."""
    rows = _rows()
    return rows.get((str(tenant_id), key)) or rows.get((None, key)) or UNKNOWN


def categories(tenant_id) -> list[CategoryInfo]:
    """Every category this tenant can use, in display order."""
    rows = _rows()
    merged = {key: info for (tid, key), info in rows.items() if tid is None}
    merged.update({key: info for (tid, key), info in rows.items() if tid == str(tenant_id)})
    return sorted(merged.values(), key=lambda c: (c.order, c.key))


def require(tenant_id, key: str) -> CategoryInfo:
    """`key` as a category, or a typed error naming the known ones."""
    info = category(tenant_id, key)
    if info is UNKNOWN:
        raise errors.UnknownCategory(f"Unknown category '{key}'.",
                                     details={"allowed": [c.key for c in categories(tenant_id)]})
    return info

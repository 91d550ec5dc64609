"""The one read-only ModelAdmin: records (messages, events, the audit log, the consent ledger) are
viewed in the admin, never added, edited or deleted there; they change through their services."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyMixin:
    """Put first in the bases: ``class XAdmin(ReadOnlyMixin, admin.ModelAdmin)``. Actions and custom
    views (export, reprocess, cancel) still work: they call services, not the admin's save/delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

"""The audit log in the admin: read-only, filterable, exportable as CSV."""

from __future__ import annotations

import csv
import json

from django.contrib import admin
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from comms.admin_mixins import ReadOnlyMixin
from comms.models import AuditEntry

# Without the app list down the left side a change list gets the page's full width beside its filters
# (issue 13: ten columns did not fit 1280 px); the admin index and breadcrumbs still reach every model.
admin.site.enable_nav_sidebar = False

AUDIT_COLUMNS = ("at", "actor_label", "action", "target_type", "target_id", "target_label", "reason", "ip", "diff")


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: list[str], rows) -> StreamingHttpResponse:
    """Stream rows as CSV (an export of a million audit rows never sits in memory)."""
    writer = csv.writer(_Echo())
    body = (writer.writerow(row) for row in _prefixed(header, rows))
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _prefixed(header, rows):
    yield header
    for row in rows:
        yield [_cell(v) for v in row]


def _cell(value) -> str:
    """Values as text; a leading =, +, - or @ is quoted so spreadsheets never run it as a formula."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Append-only: nobody adds, edits or deletes entries here (a database trigger refuses it anyway)."""

    list_display = ("at", "actor_label", "action", "target_type", "target_label", "reason", "ip")
    list_filter = ("action", "target_type", ("at", admin.DateFieldListFilter), "tenant")
    search_fields = ("actor_label", "target_id", "target_label", "reason", "=ip")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = ["export_selected"]
    show_full_result_count = False
    change_list_template = "admin/admin_console/auditentry/change_list.html"

    def get_urls(self):
        own = [path("export.csv", self.admin_site.admin_view(self.export_view), name="comms_auditentry_export")]
        return own + super().get_urls()

    def export_view(self, request: HttpRequest):
        """The current filtered list (same query string as the changelist), every row, as CSV."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request).order_by("at", "id")
        return self._export(queryset)

    @admin.action(description="Export selected entries as CSV")
    def export_selected(self, request: HttpRequest, queryset):
        return self._export(queryset.order_by("at", "id"))

    def _export(self, queryset):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        rows = queryset.values_list(*AUDIT_COLUMNS).iterator(chunk_size=2000)
        return csv_response(filename=f"audit-{stamp}.csv", header=list(AUDIT_COLUMNS), rows=rows)


from admin_console import admin_inbound, admin_messages, admin_templates  # noqa: E402,F401  (register their ModelAdmins)

"""The audit log in the admin: read-only, filterable, exportable as CSV."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import path
from django.utils import timezone

from comms.admin_mixins import ReadOnlyMixin
from comms.admin_export import csv_response
from comms.models import AuditEntry

AUDIT_COLUMNS = ("at", "actor_label", "action", "target_type", "target_id", "target_label", "reason", "ip", "diff")


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

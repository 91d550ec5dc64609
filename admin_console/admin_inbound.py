"""Console additions for issue 5/6 models: suppression viewer (approver-only re-permission, CSV export,
source/date filters) and the webhook event viewer (raw payload, signature status, re-process button)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from admin_console import listcells
from admin_console.admin import csv_response
from preferences.admin import SuppressionAdmin as BaseSuppressionAdmin
from preferences.models import Suppression
from webhooks.admin import WebhookEventAdmin as BaseWebhookEventAdmin
from webhooks.models import WebhookEvent
from webhooks.services import webhook_reprocess

SUPPRESSION_COLUMNS = ("channel", "address_hash", "reason", "source", "detail", "created_at", "updated_at",
                       "expires_at")

admin.site.unregister(Suppression)
admin.site.unregister(WebhookEvent)


@admin.register(Suppression)
class SuppressionAdmin(BaseSuppressionAdmin):
    list_filter = ("channel", "reason", "source", ("created_at", admin.DateFieldListFilter), "tenant")
    search_help_text = "Type the full address: it is hashed with the tenant key and matched on the hash."
    actions = ["lift_with_consent", "export_selected"]
    change_list_template = "admin/admin_console/suppression_change_list.html"

    def has_lift_permission(self, request: HttpRequest) -> bool:
        """Re-permission needs documented consent (the form) and an approver (this permission)."""
        return request.user.has_perm("preferences.change_suppression")

    @admin.action(description="Lift (re-permission with documented consent; approvers only)", permissions=["lift"])
    def lift_with_consent(self, request, queryset):
        return super().lift_with_consent(request, queryset)

    def get_urls(self):
        own = [path("export.csv", self.admin_site.admin_view(self.export_view),
                    name="preferences_suppression_export")]
        return own + super().get_urls()

    def export_view(self, request: HttpRequest):
        """The filtered list as CSV for audits: hashes and masked addresses, never the clear address."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self._export(self.get_changelist_instance(request).get_queryset(request))

    @admin.action(description="Export selected suppressions as CSV")
    def export_selected(self, request, queryset):
        return self._export(queryset)

    def _export(self, queryset):
        rows = ([self.masked_address(row), *(getattr(row, c) for c in SUPPRESSION_COLUMNS)]
                for row in queryset.order_by("created_at", "id").iterator(chunk_size=2000))
        return csv_response(filename=f"suppressions-{timezone.now():%Y%m%d-%H%M%S}.csv",
                            header=["masked_address", *SUPPRESSION_COLUMNS], rows=rows)


@admin.register(WebhookEvent)
class WebhookEventAdmin(BaseWebhookEventAdmin):
    # Compact cells (admin_console.listcells): the state's code, the long label in its title.
    list_display = ("id", "provider", "types", "state_code", "sig", "unknown", "applied", "duplicate", "orphan",
                    "tries", "received")
    readonly_fields = ["signature", "raw_payload", *BaseWebhookEventAdmin.readonly_fields]
    change_form_template = "admin/admin_console/webhookevent_change_form.html"

    @admin.display(description="signature")
    def signature(self, obj: WebhookEvent):
        if obj.signature_valid is None:
            return "not checked"
        if obj.signature_valid:
            return format_html('<span style="color: {}">valid</span>', "#047857")
        return format_html('<b style="color: #b91c1c">INVALID</b> {}', obj.signature_error)

    @admin.display(description="signature", ordering="signature_valid")
    def sig(self, obj: WebhookEvent):
        if obj.signature_valid is False:  # the list shows the verdict; the reason is in the title and the page
            return format_html('<b style="color: #b91c1c" title="{}">INVALID</b>', obj.signature_error)
        return self.signature(obj)

    @admin.display(description="applied", ordering="events_applied")
    def applied(self, obj: WebhookEvent):
        return obj.events_applied

    @admin.display(description="dup.", ordering="events_duplicate")
    def duplicate(self, obj: WebhookEvent):
        return obj.events_duplicate

    @admin.display(description="orphan", ordering="events_orphan")
    def orphan(self, obj: WebhookEvent):
        return obj.events_orphan

    @admin.display(description="event type", ordering="event_type")
    def types(self, obj: WebhookEvent):
        return listcells.clipped(obj.event_type)

    @admin.display(description="state", ordering="state")
    def state_code(self, obj: WebhookEvent):
        return format_html('<span title="{}">{}</span>', obj.get_state_display(), obj.state)

    @admin.display(description="tries", ordering="attempts")
    def tries(self, obj: WebhookEvent):
        return obj.attempts

    @admin.display(description="received (UTC)", ordering="received_at")
    def received(self, obj: WebhookEvent):
        return listcells.compact_time(obj.received_at)

    @admin.display(description="raw payload")
    def raw_payload(self, obj: WebhookEvent):
        pretty = json.dumps(obj.payload, indent=2, ensure_ascii=False) if obj.payload is not None else obj.body
        return format_html('<pre style="max-height: 480px; overflow: auto; max-width: 900px; white-space: pre-wrap">'
                           '{}</pre><details><summary>headers</summary><pre>{}</pre></details>', pretty,
                           json.dumps(obj.headers, indent=2, ensure_ascii=False))

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.change_webhookevent")

    @admin.action(description="Re-process the selected webhooks", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        return super().reprocess(request, queryset)

    def get_urls(self):
        own = [path("<int:pk>/reprocess/", self.admin_site.admin_view(require_POST(self.reprocess_view)),
                    name="webhooks_webhookevent_reprocess")]
        return own + super().get_urls()

    def reprocess_view(self, request: HttpRequest, pk: int):
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        row = get_object_or_404(WebhookEvent, pk=pk)
        result = webhook_reprocess(webhook_id=row.pk, actor=request.user)
        self.message_user(request, f"Webhook #{row.pk} re-processed: {result.state}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:webhooks_webhookevent_change", args=[pk]))

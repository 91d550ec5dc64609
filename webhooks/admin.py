"""Stored provider webhooks: read-only, filterable, with a re-process action."""

from __future__ import annotations

from django.contrib import admin, messages

from webhooks.models import WebhookEvent
from webhooks.services import webhook_reprocess


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("id", "provider", "event_type", "state", "signature_valid", "unknown", "events_applied",
                    "events_duplicate", "events_orphan", "attempts", "received_at")
    list_filter = ("provider", "state", "signature_valid", "unknown")
    search_fields = ("provider_event_id", "event_type", "body")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Re-process the selected webhooks")
    def reprocess(self, request, queryset):
        done = {}
        for row in queryset:
            result = webhook_reprocess(webhook_id=row.pk, actor=request.user)
            done[result.state] = done.get(result.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(done.items()))
        self.message_user(request, f"Re-processed: {summary or 'nothing'}.", messages.SUCCESS)

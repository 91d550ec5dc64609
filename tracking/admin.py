"""Read-only views of events, metrics and deliverability alerts, plus a reconcile action."""

from __future__ import annotations

from django.contrib import admin, messages

from comms.admin_mixins import ReadOnlyMixin
from tracking.models import CampaignMetrics, DeliverabilityAlert, MessageEvent, TrackingMiss
from tracking.services import metrics_reconcile


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "event_type", "bounce_type", "provider", "message_id", "recipient_address", "device_type",
                    "client", "timestamp")
    list_filter = ("event_type", "bounce_type", "provider", "device_type")
    search_fields = ("recipient_address", "provider_event_id")


@admin.register(CampaignMetrics)
class CampaignMetricsAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("scope", "key", "campaign_name", "sent_count", "delivered_count", "bounced_count",
                    "opened_count", "clicked_count", "complained_count", "unsubscribed_count", "delivery_rate",
                    "open_rate", "click_rate", "last_updated", "reconciled_at")
    list_filter = ("scope", "channel")
    search_fields = ("key", "campaign_name")
    actions = ["reconcile"]

    @admin.action(description="Recount from raw events")
    def reconcile(self, request, queryset):
        for row in queryset:
            metrics_reconcile(tenant_id=row.tenant_id, scope=row.scope, key=row.key)
        self.message_user(request, f"{queryset.count()} row(s) recounted.", messages.SUCCESS)


@admin.register(DeliverabilityAlert)
class DeliverabilityAlertAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "subject", "key", "metric", "rate", "threshold", "sent", "count", "action",
                    "resolved_at")
    list_filter = ("metric", "subject")


@admin.register(TrackingMiss)
class TrackingMissAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("at", "kind", "reason", "message_id")
    list_filter = ("kind", "reason")

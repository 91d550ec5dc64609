"""Read-only views of events, metrics and deliverability alerts, plus a reconcile action; the provider
events on a message's timeline (delivery's message page)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse

from tracking.models import CampaignMetrics, DeliverabilityAlert, MessageEvent, TrackingMiss
from comms.admin_mixins import ReadOnlyMixin
from delivery.admin import message_timeline_source_register
from delivery.models import Message
from tracking.services import metrics_reconcile


@message_timeline_source_register
def message_event_rows(message: Message) -> list[dict]:
    """Tracked provider events of a message and the stored webhooks that carried them (signature verdict)."""
    events = MessageEvent.objects.filter(message_id=message.id).select_related("webhook").order_by("timestamp")[:500]
    rows = []
    for e in events:
        hook = e.webhook
        rows.append({
            "at": e.timestamp, "kind": "provider event", "what": e.event_type + (f" ({e.bounce_type})" if e.bounce_type else ""),
            "provider": e.provider, "detail": " ".join(x for x in (e.reason, e.link_url, e.client) if x),
            "link": reverse("admin:webhooks_webhookevent_change", args=[hook.pk]) if hook else "",
            "signature": "" if hook is None else ("valid" if hook.signature_valid else
                                                  "not checked" if hook.signature_valid is None else "INVALID"),
        })
    return rows


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

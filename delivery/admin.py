from django.contrib import admin

from comms.admin_mixins import ReadOnlyMixin
from comms.forms import ChoiceArrayAdminMixin
from delivery.models import ChannelProvider, DeliveryLog, Message, MessageBatch


class DeliveryLogInline(admin.TabularInline):
    model = DeliveryLog
    extra = 0
    can_delete = False
    fields = ("at", "event", "attempt", "provider", "status_code", "detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Messages are a record: they change through the delivery services (cancel, requeue), never by
    editing."""

    list_display = ("id", "channel", "recipient_address", "status", "priority", "attempt_count", "created_at", "sent_at")
    list_filter = ("status", "channel", "priority", "category")
    search_fields = ("=id", "recipient_address", "provider_ref", "idempotency_key")
    readonly_fields = [f.name for f in Message._meta.fields]
    fieldsets = [
        (None, {"fields": ["id", "status", "channel", "priority", "category", "tenant", "batch"]}),
        ("Recipient", {"fields": ["recipient", "recipient_address"]}),
        ("Content", {"fields": ["template_key", "subject", "body", "body_html", "variables", "metadata"]}),
        ("Delivery", {"fields": ["provider", "provider_ref", "sent_at", "delivered_at", "failed_at", "failure_code",
                                 "failure_reason"]}),
        ("Queue", {"classes": ["collapse"], "fields": [
            "attempt_count", "next_attempt_at", "scheduled_for", "lease_owner", "lease_expires_at",
            "idempotency_key", "request_hash", "created_at", "updated_at"]}),
    ]
    inlines = [DeliveryLogInline]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is not free
    list_select_related = ["tenant"]



@admin.register(MessageBatch)
class MessageBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "priority", "requested", "accepted", "rejected", "created_at")
    readonly_fields = [f.name for f in MessageBatch._meta.fields]


@admin.register(ChannelProvider)
class ChannelProviderAdmin(ChoiceArrayAdminMixin, admin.ModelAdmin):  # categories: checkboxes
    list_display = ("name", "channel", "tenant", "is_primary", "order", "status", "categories", "rate_limit", "daily_limit")
    list_filter = ("channel", "status")

from django.contrib import admin

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
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "recipient_address", "status", "priority", "attempt_count", "created_at", "sent_at")
    list_filter = ("status", "channel", "priority", "category")
    search_fields = ("=id", "recipient_address", "provider_ref", "idempotency_key")
    readonly_fields = [f.name for f in Message._meta.fields]
    inlines = [DeliveryLogInline]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is not free

    def has_add_permission(self, request):
        return False


@admin.register(MessageBatch)
class MessageBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "priority", "requested", "accepted", "rejected", "created_at")
    readonly_fields = [f.name for f in MessageBatch._meta.fields]


@admin.register(ChannelProvider)
class ChannelProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "tenant", "is_primary", "order", "status", "rate_limit")
    list_filter = ("channel", "status")

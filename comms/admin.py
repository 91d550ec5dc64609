from django.contrib import admin

from comms.forms import ChoiceArrayAdminMixin
from comms.models import ApiKey, Recipient, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(ChoiceArrayAdminMixin, admin.ModelAdmin):  # scopes: checkboxes
    list_display = ("name", "prefix", "tenant", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("name", "prefix")


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ("external_id", "tenant", "email", "phone", "locale", "timezone", "updated_at")
    list_filter = ("tenant", "locale")
    search_fields = ("external_id", "email", "phone")

from django.contrib import admin

from comms.forms import ChoiceArrayAdminMixin
from comms import quotas
from comms.models import ApiKey, Recipient, Tenant, TenantQuota


class TenantQuotaInline(admin.StackedInline):
    """The tenant's plan and its overrides (comms.quotas); empty fields take the plan's values."""

    model = TenantQuota
    can_delete = True
    extra = 0
    max_num = 1


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    inlines = [TenantQuotaInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        quotas.forget(form.instance.pk)  # this process at once; the others within COMMS_TENANT_QUOTA_CACHE_SECONDS


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

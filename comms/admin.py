from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from comms.admin_mixins import ReadOnlyMixin
from comms.forms import ChoiceArrayAdminMixin
from comms import quotas
from comms.models import ApiKey, Recipient, RetentionPolicy, RetentionRun, Tenant, TenantQuota
from comms.retention import retention_policy_set
from comms.retention_policy import DEFAULT_DAYS, MINIMUM_DAYS


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


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """Per-tenant (or deployment-wide, tenant empty) retention; saved through the service, which checks
    the kind's minimum and refuses consent (the form shows the typed error on the days field)."""

    list_display = ("kind", "tenant_or_everyone", "days", "default_days", "minimum_days", "updated_at")
    list_filter = ("kind", "tenant")
    readonly_fields = ("updated_at",)

    @admin.display(description="tenant")
    def tenant_or_everyone(self, obj: RetentionPolicy) -> str:
        return str(obj.tenant) if obj.tenant_id else "everyone (default)"

    @admin.display(description="built-in default")
    def default_days(self, obj: RetentionPolicy) -> int | None:
        return DEFAULT_DAYS.get(obj.kind)

    @admin.display(description="minimum")
    def minimum_days(self, obj: RetentionPolicy) -> int | None:
        return MINIMUM_DAYS.get(obj.kind)

    def save_model(self, request: HttpRequest, obj: RetentionPolicy, form: Any, change: bool) -> None:
        obj.pk = retention_policy_set(tenant=obj.tenant, kind=obj.kind, days=obj.days, actor=request.user).pk


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """What each retention run removed and archived, per kind; a failed run shows why (storage down)."""

    list_display = ("kind", "started_at", "status", "dry_run", "removed", "with_it", "archived", "error_code")
    list_filter = ("kind", "status", "dry_run")
    ordering = ("-started_at",)

    @admin.display(description="error")
    def error_code(self, obj: RetentionRun) -> str:
        """The typed code only (COMMS_ARCHIVE_UNAVAILABLE…): the list stays one line; the run's page has it all."""
        return obj.error.split(":", 1)[0][:40] if obj.error else "-"

    @admin.display(description="child rows")
    def with_it(self, obj: RetentionRun) -> str:
        return ", ".join(f"{n} {table}" for table, n in (obj.children_removed or {}).items()) or "-"

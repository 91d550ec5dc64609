"""Admin: the category catalogue (editable), the suppression viewer (search by address, looked up by
its hash; re-permission only with documented consent, by approvers; source/date filters; CSV export),
and read-only preferences and consent ledger."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from comms import errors
from comms.admin_export import csv_response
from comms.admin_mixins import ReadOnlyMixin
from preferences.hashing import address_hash
from preferences.services import suppression_lift
from preferences.models import ConsentRecord, NotificationCategory, Suppression, UserPreference


@admin.register(NotificationCategory)
class NotificationCategoryAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "tenant", "critical", "marketing", "double_opt_in", "respects_quiet_hours", "order")
    list_filter = ("critical", "marketing", "tenant")
    search_fields = ("key", "name")


SUPPRESSION_COLUMNS = ("channel", "address_hash", "reason", "source", "detail", "created_at", "updated_at",
                       "expires_at")


class LiftForm(forms.Form):
    consent_text = forms.CharField(widget=forms.Textarea, help_text="What the person agreed to, and how it was "
                                                                    "documented (ticket, recording, form).")


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Search with the full address (it is hashed for the lookup; nothing is searched in clear)."""

    list_display = ("channel", "masked_address", "reason", "source", "created_at", "expires_at")
    list_filter = ("channel", "reason", "source", ("created_at", admin.DateFieldListFilter), "tenant")
    search_fields = ("address_hash",)
    search_help_text = "Type the full address: it is hashed with the tenant key and matched on the hash."
    readonly_fields = ("tenant", "channel", "address_hash", "masked_address", "reason", "source", "detail",
                       "created_at", "updated_at", "expires_at", "event_at")
    exclude = ("address_encrypted",)
    actions = ["lift_with_consent", "export_selected"]
    change_list_template = "admin/preferences/suppression/change_list.html"

    def has_add_permission(self, request):
        return False

    @admin.display(description="address")
    def masked_address(self, obj: Suppression) -> str:
        value = obj.address
        if not value:
            return "(erased)" if obj.reason == "legal" else "—"
        local, at, domain = value.partition("@")
        return f"{local[:2]}…@{domain}" if at else f"{value[:4]}…{value[-2:]}"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        hashes = {address_hash(ch, term) for ch in ("email", "sms", "push", "voice")} | {term.lower()}
        return queryset.filter(address_hash__in=hashes), False

    def has_lift_permission(self, request: HttpRequest) -> bool:
        """Re-permission needs documented consent (the form) and an approver (this permission)."""
        return request.user.has_perm("preferences.change_suppression")

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

    @admin.action(description="Lift (re-permission with documented consent; approvers only)", permissions=["lift"])
    def lift_with_consent(self, request, queryset):
        form = LiftForm(request.POST if "consent_text" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(request, "admin/preferences/suppression/lift.html", {
                **self.admin_site.each_context(request), "form": form, "rows": queryset,
                "opts": self.model._meta, "title": "Lift suppressions",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME})
        lifted = 0
        for row in queryset:
            address = row.address
            try:
                if address and suppression_lift(tenant=row.tenant, channel=row.channel, address=address,
                                                consent_text=form.cleaned_data["consent_text"],
                                                source=f"admin:{request.user.get_username()}",
                                                actor=request.user):
                    lifted += 1
            except errors.CommsError as exc:
                self.message_user(request, f"{row}: {exc.message}", level=messages.ERROR)
        self.message_user(request, f"{lifted} suppression(s) lifted.")
        return None


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The ledger cannot be edited (the database refuses it too)."""

    list_display = ("at", "recipient", "channel", "category", "action", "source", "legal_basis", "erased_at")
    list_filter = ("action", "channel", "source", "legal_basis")
    search_fields = ("recipient__external_id", "subject_hash", "source_ref")  # source_ref: e.g. a MessageSid


@admin.register(UserPreference)
class UserPreferenceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("recipient", "channel", "category", "enabled", "frequency", "updated_by", "updated_at")
    list_filter = ("channel", "category", "enabled", "updated_by")
    search_fields = ("recipient__external_id",)

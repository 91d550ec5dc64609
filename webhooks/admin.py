"""Stored provider webhooks: read-only, filterable, the raw payload and signature status on the page,
with a re-process action and button."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from comms import admin_cells
from webhooks.models import WebhookEvent
from webhooks.services import webhook_reprocess


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    # Compact cells (comms.admin_cells): the state's code, the long label in its title.
    list_display = ("id", "provider", "types", "state_code", "sig", "unknown", "applied", "duplicate", "orphan",
                    "tries", "received")
    list_filter = ("provider", "state", "signature_valid", "unknown")
    search_fields = ("provider_event_id", "event_type", "body")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    readonly_fields = ["signature", "raw_payload", *(f.name for f in WebhookEvent._meta.fields)]
    change_form_template = "admin/webhooks/webhookevent/change_form.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

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
        return admin_cells.clipped(obj.event_type)

    @admin.display(description="state", ordering="state")
    def state_code(self, obj: WebhookEvent):
        return format_html('<span title="{}">{}</span>', obj.get_state_display(), obj.state)

    @admin.display(description="tries", ordering="attempts")
    def tries(self, obj: WebhookEvent):
        return obj.attempts

    @admin.display(description="received (UTC)", ordering="received_at")
    def received(self, obj: WebhookEvent):
        return admin_cells.compact_time(obj.received_at)

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
        done = {}
        for row in queryset:
            result = webhook_reprocess(webhook_id=row.pk, actor=request.user)
            done[result.state] = done.get(result.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(done.items()))
        self.message_user(request, f"Re-processed: {summary or 'nothing'}.", messages.SUCCESS)

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

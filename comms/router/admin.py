"""Admin for the router: rules (versioned JSON with a dry run), events (unrouted ones visible),
digests, escalations and schedules. Campaigns and segments: comms/campaigns/admin.py."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from comms import errors, jsonlimits
from comms.audit import client_ip
from comms.jsonlimits import BoundedJSONField
from comms.router import journey_admin  # noqa: F401 (registers the journey pages: list, detail, runs, simulation)
from comms.router.api import event_parse
from comms.router.events import event_dry_run
from comms.router.models import (
    Digest, Escalation, Event, RoutingRule, RoutingRuleVersion, Schedule,
)
from comms.router.rules import rule_activate, rule_save, rule_validate
from comms.router.schedules import schedule_cancel, schedule_create, schedule_update, schedule_validate

SAMPLE_EVENT = {"name": "", "recipients": ["user-1"], "cause_ref": "dry-run-1", "payload": {}}


class RoutingRuleForm(forms.ModelForm):
    definition = BoundedJSONField(help_text='{"steps": [{"template": "…", "channels": ["in_app", "email"], '
                                           '"when": "payload.amount > 100", "delay_seconds": 0, "escalation": '
                                           '{"after_seconds": 1800, "channels": ["email"]}}], '
                                           '"dedupe": {"key": "BOOKING:{payload.booking_id}:{payload.status}"}}',
                                 widget=forms.Textarea(attrs={"rows": 18, "cols": 100, "class": "vLargeTextField"}))
    notes = forms.CharField(required=False, help_text="What changed (kept with the version).")
    activate_version = forms.IntegerField(required=False, min_value=1, label="Activate version",
                                          help_text="Roll back (or forward): make this stored version the active "
                                                    "one. The definition above is then not saved.")

    class Meta:
        model = RoutingRule
        fields = ("tenant", "event_name", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.active_version_id:
            self.initial["definition"] = self.instance.active_version.definition

    def clean_activate_version(self):
        version = self.cleaned_data.get("activate_version")
        if version and not (self.instance.pk and self.instance.versions.filter(version=version).exists()):
            raise forms.ValidationError(f"This rule has no stored version {version}.")
        return version

    def clean_definition(self):
        definition = self.cleaned_data["definition"]
        try:
            rule_validate(definition)
        except errors.CommsError as exc:
            raise forms.ValidationError(exc.message) from None
        return definition


class RuleVersionInline(admin.TabularInline):
    model = RoutingRuleVersion
    fields = ("version", "notes", "created_by", "created_at", "definition")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ("event_name", "tenant", "active", "updated_at", "dry_run_link")
    list_filter = ("tenant",)
    search_fields = ("event_name",)
    inlines = [RuleVersionInline]
    readonly_fields = ("dry_run_link",)

    @admin.display(description="active version")
    def active(self, obj):
        return f"v{obj.active_version.version}" if obj.active_version_id else "—"

    @admin.display(description="dry run")
    def dry_run_link(self, obj):
        if not obj.pk:
            return "Save the rule first."
        return format_html('<a class="button" href="{}">Dry run with a sample event</a>',
                           reverse("admin:router_routingrule_dryrun", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        # Saving a changed definition adds a version and activates it (earlier ones stay for rollback).
        obj.save()
        if form.cleaned_data.get("activate_version"):
            rule_activate(rule=obj, version=form.cleaned_data["activate_version"], actor=request.user,
                          ip=client_ip(request))
            obj.refresh_from_db()
            return
        rule_save(tenant=obj.tenant, event_name=obj.event_name, definition=form.cleaned_data["definition"],
                  notes=form.cleaned_data.get("notes", ""), actor=request.user, ip=client_ip(request))
        obj.refresh_from_db()

    def get_urls(self):
        return [path("<int:rule_id>/dry-run/", self.admin_site.admin_view(self.dry_run_view),
                     name="router_routingrule_dryrun"), *super().get_urls()]

    def dry_run_view(self, request, rule_id: int):
        rule = get_object_or_404(RoutingRule, pk=rule_id)
        sample = {**SAMPLE_EVENT, "name": rule.event_name}
        text = request.POST.get("event") or json.dumps(sample, indent=2)
        result, problem = None, None
        if request.method == "POST":
            try:
                raw = jsonlimits.loads(text)
                if isinstance(raw, dict):
                    raw.setdefault("name", rule.event_name)
                result = event_dry_run(tenant=rule.tenant, event=event_parse(raw))
            except json.JSONDecodeError as exc:
                problem = f"Not JSON: {exc}"
            except Exception as exc:  # shown to the editor, whatever the input got wrong
                err = errors.to_comms_error(exc)
                if err is None:
                    raise
                problem = f"{err.code}: {err.message}"
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "rule": rule, "text": text,
                   "result": result, "problem": problem, "title": f"Dry run: {rule.event_name}"}
        return TemplateResponse(request, "admin/router/routingrule/dry_run.html", context)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "cause_ref", "produced", "tenant", "created_at")
    list_filter = ("state", "tenant")
    search_fields = ("name", "cause_ref")
    readonly_fields = [f.name for f in Event._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("key", "recipient", "state", "cadence", "due_at", "item_count", "message_id")
    list_filter = ("state", "cadence")
    search_fields = ("key", "recipient__external_id")
    readonly_fields = [f.name for f in Digest._meta.fields]

    @admin.display(description="items")
    def item_count(self, obj):
        return obj.items.count()

    def has_add_permission(self, request):
        return False


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ("message_id", "recipient", "state", "due_at", "channels", "escalated_message_id")
    list_filter = ("state",)
    readonly_fields = [f.name for f in Escalation._meta.fields]

    def has_add_permission(self, request):
        return False

def _form_error(exc: errors.CommsError) -> forms.ValidationError:
    return forms.ValidationError(f"{exc.code}: {exc.message}")


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ("tenant", "name", "cron", "timezone", "run_at", "event")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tenant"].disabled = True

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if self.instance.pk and self.instance.cancelled_at is not None:
            raise _form_error(errors.ScheduleState("A cancelled schedule cannot be changed."))
        try:
            checked = schedule_validate(event=data.get("event"), cron=data.get("cron") or "",
                                        run_at=data.get("run_at"), tz=data.get("timezone") or "UTC")
        except errors.CommsError as exc:
            raise _form_error(exc) from None
        data["cron"] = checked.cron
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "kind", "cron", "timezone", "next_run_at", "last_run_at", "run_count", "cancelled_at",
                    "last_error")
    list_filter = ("kind", "tenant")
    readonly_fields = ("kind", "next_run_at", "last_run_at", "run_count", "last_error", "cancelled_at")
    actions = ["cancel"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            saved = schedule_update(tenant=obj.tenant, schedule_id=obj.pk, name=data["name"], event=data["event"],
                                    cron=data["cron"] or "", run_at=data["run_at"], tz=data["timezone"],
                                    actor=request.user, ip=client_ip(request))
        else:
            saved = schedule_create(tenant=data["tenant"], name=data["name"], event=data["event"],
                                    cron=data["cron"] or "", run_at=data["run_at"], tz=data["timezone"],
                                    actor=request.user, ip=client_ip(request))
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        return False  # cancel keeps the history; a deleted schedule would leave no trace

    @admin.action(description="Cancel selected schedules")
    def cancel(self, request, queryset):
        for schedule in queryset.filter(cancelled_at__isnull=True):
            schedule_cancel(tenant=schedule.tenant, schedule_id=schedule.pk, actor=request.user,
                            ip=client_ip(request))

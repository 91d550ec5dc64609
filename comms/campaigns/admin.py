"""Admin for campaigns and segments: every write goes through the same services as the API.

A campaign is created or (as a draft) edited through a form whose clean runs ``campaign_validate``
(template and its channels, variables, audience valid and reachable, schedule) and whose save calls
``campaign_create``/``campaign_update``; state changes only through the schedule/pause/resume/cancel
actions. Past draft, the change page is read-only. Segments likewise save through
``segment_save``/``segment_delete``. Every one of these writes an AuditEntry with the signed-in user
as actor. (Schedules are the router's: comms/router/admin.py.)
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from comms import errors
from comms.audit import client_ip
from comms.campaigns.audience import ADDRESS_FIELD
from comms.jsonlimits import BoundedJSONField
from comms.campaigns.abtest import abtest_due_at, campaign_results
from comms.campaigns.abtest_admin import (
    AB_FIELDSET, AbTestFields, ab_decide_context, ab_form_error, abtest_decide_view, is_uuid,
)
from comms.campaigns.metrics import campaign_metrics
from comms.campaigns.models import Campaign, Segment
from comms.campaigns.segments import filter_validate, segment_delete, segment_save
from comms.campaigns.serializers import CampaignSerializer
from comms.campaigns.services import (
    campaign_cancel, campaign_create, campaign_pause, campaign_progress, campaign_resume, campaign_schedule,
    campaign_update, campaign_validate,
)
from comms.enums import Category, Channel, Priority
from comms.models import Tenant

Kind = Campaign.AudienceKind
When = Campaign.ScheduleKind


def _form_error(exc: errors.CommsError) -> forms.ValidationError:
    return forms.ValidationError(f"{exc.code}: {exc.message}")


class CampaignForm(AbTestFields, forms.ModelForm):
    """The API's campaign body as a form; nothing is written to the model directly."""

    tenant = forms.ModelChoiceField(Tenant.objects.all())
    name = forms.CharField(max_length=200)
    channels = forms.MultipleChoiceField(choices=[(c, label) for c, label in Channel.choices if c in ADDRESS_FIELD],
                                         widget=forms.CheckboxSelectMultiple)
    template = forms.CharField(max_length=128, help_text="Key of an active template with content on every channel.")
    variables = BoundedJSONField(required=False, initial=dict, help_text="Shared template variables (JSON object).")
    category = forms.ChoiceField(choices=Category.choices, initial=Category.MARKETING)
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=int(Priority.P3))
    audience_kind = forms.ChoiceField(choices=Kind.choices, label="Audience", initial=Kind.LIST)
    recipients = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                                 help_text="List audience: recipient ids, one per line or comma-separated.")
    segment = forms.ModelChoiceField(Segment.objects.all(), required=False, help_text="Segment audience.")
    csv = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                          help_text="CSV audience: a header with recipient_id or to; other columns are variables.")
    schedule_kind = forms.ChoiceField(choices=When.choices, label="Schedule", initial=When.NOW)
    send_at = forms.DateTimeField(required=False, help_text=(
        "For 'at a time', or the start of 'best hour' (YYYY-MM-DD HH:MM, server time zone)."))
    local_date = forms.DateField(required=False, help_text="For 'local time': the day (YYYY-MM-DD) …")
    local_time = forms.TimeField(required=False, help_text="… and the wall-clock time (HH:MM) in each recipient's zone.")
    best_within_hours = forms.IntegerField(required=False, label="Best hour within (hours)", help_text=(
        "For 'best hour': each recipient gets their best hour (from their opens and clicks) within this many "
        "hours (1–168) of the start, or of 'send at' if given; quiet hours are respected."))
    throttle_per_minute = forms.IntegerField(required=False, min_value=1)

    class Meta:
        model = Campaign
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        campaign = self.instance
        if not campaign._state.adding:  # (a new Campaign has its uuid pk already)
            self.fields["tenant"].disabled = True
            self.initial.update(
                tenant=campaign.tenant_id, name=campaign.name, channels=campaign.channels,
                template=campaign.template_key, variables=campaign.variables, category=campaign.category,
                priority=campaign.priority, audience_kind=campaign.audience_kind, segment=campaign.segment_id,
                schedule_kind=campaign.schedule_kind, send_at=campaign.send_at, local_date=campaign.local_date,
                local_time=campaign.local_time, throttle_per_minute=campaign.throttle_per_minute,
                best_within_hours=campaign.best_within_hours)
            if campaign.audience_kind == Kind.LIST:
                self.initial["recipients"] = "\n".join(campaign.audience_list)
            self.ab_initial(campaign.ab_test)

    def _audience(self, data: dict) -> dict:
        kind = data.get("audience_kind")
        if kind == Kind.SEGMENT:
            if data.get("segment") is None:
                raise forms.ValidationError({"segment": "Choose the segment."})
            return {"segment": data["segment"].name}
        if kind == Kind.CSV:
            if not data.get("csv") and not self.instance._state.adding and self.instance.audience_kind == Kind.CSV:
                raise forms.ValidationError({"csv": "Upload the CSV again to change a CSV audience."})
            return {"csv": data.get("csv") or ""}
        ids = [i.strip() for i in (data.get("recipients") or "").replace(",", "\n").splitlines() if i.strip()]
        return {"recipients": ids}

    def _schedule(self, data: dict) -> dict:
        kind = data.get("schedule_kind")
        if kind == When.AT:
            if data.get("send_at") is None:
                raise forms.ValidationError({"send_at": "Give the time."})
            return {"at": data["send_at"].isoformat()}
        if kind == When.LOCAL:
            if data.get("local_time") is None:
                raise forms.ValidationError({"local_time": "Give the local time."})
            return {"local_time": data["local_time"].isoformat(timespec="minutes"),
                    **({"local_date": data["local_date"].isoformat()} if data.get("local_date") else {})}
        if kind == When.BEST:
            if data.get("best_within_hours") is None:
                raise forms.ValidationError({"best_within_hours": "Give the window in hours (1–168)."})
            return {"best_within_hours": data["best_within_hours"],
                    **({"at": data["send_at"].isoformat()} if data.get("send_at") else {})}
        return {}

    def _post_clean(self):
        """No model validation of the form's fields: ``campaign_validate`` in clean is the check."""

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        body = {"name": data["name"], "channels": data["channels"], "template": data["template"],
                "variables": data.get("variables") or {}, "category": data["category"],
                "priority": data["priority"], "audience": self._audience(data), "schedule": self._schedule(data),
                "throttle_per_minute": data.get("throttle_per_minute"), "ab_test": self.ab_body(data)}
        serializer = CampaignSerializer(data=body)  # the API's shape checks, then the service's
        if not serializer.is_valid():
            raise forms.ValidationError(json.dumps(serializer.errors))
        self.body = dict(serializer.validated_data)
        editing = not self.instance._state.adding
        tenant = self.instance.tenant if editing else data["tenant"]
        try:
            if editing and self.instance.state != Campaign.State.DRAFT:
                raise errors.CampaignState(f"A {self.instance.state} campaign cannot be edited.")
            self.checked = campaign_validate(tenant=tenant, data=self.body)
        except errors.CommsError as exc:
            raise (ab_form_error(exc) or _form_error(exc)) from None
        return data


class ReadOnlyCampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ()


def _campaign_action(fn, label: str):
    def action(modeladmin, request, queryset):
        for campaign in queryset:
            try:
                fn(tenant=campaign.tenant, campaign_id=campaign.pk, actor=request.user, ip=client_ip(request))
                modeladmin.message_user(request, f"{campaign.name}: {label}.")
            except errors.CommsError as exc:
                modeladmin.message_user(request, f"{campaign.name}: {exc.message}", level=messages.ERROR)
    action.short_description = f"{label.capitalize()} selected campaigns"
    action.__name__ = f"campaign_{label.replace(' ', '_')}"
    return action


_FORM_FIELDSETS = (
    (None, {"fields": ("tenant", "name", "channels", "template", "variables", "category", "priority")}),
    ("Audience", {"fields": ("audience_kind", "recipients", "segment", "csv")}),
    ("Schedule and throttle", {"fields": ("schedule_kind", "send_at", "local_date", "local_time",
                                          "best_within_hours", "throttle_per_minute")}),
    AB_FIELDSET,
)
_STATUS = ("state", "audience_size", "audience_errors", "progress", "metrics", "ab_results", "start_at", "started_at",
           "finished_at", "paused_at", "created_by", "created_at")
_READ_ONLY = ("tenant", "name", "channels", "template_key", "variables", "category", "priority", "audience_kind",
              "segment", "schedule_kind", "send_at", "local_date", "local_time", "best_within_hours",
              "throttle_per_minute")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "channels", "template_key", "audience_kind", "audience_size", "queued_count",
                    "start_at", "finished_at")
    list_filter = ("state", "tenant")
    search_fields = ("name",)
    actions = [_campaign_action(campaign_schedule, "scheduled"), _campaign_action(campaign_pause, "paused"),
               _campaign_action(campaign_resume, "resumed"), _campaign_action(campaign_cancel, "cancelled")]
    change_form_template = "admin/campaigns/campaign/change_form.html"  # + the A/B "decide now" button

    def get_urls(self):
        own = [path("<path:object_id>/abtest-decide/", self.admin_site.admin_view(require_POST(abtest_decide_view)),
                    name="campaigns_campaign_abtest_decide")]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = Campaign.objects.filter(pk=object_id).first() if is_uuid(object_id) else None
        if not request.user.has_perm("campaigns.change_campaign"):
            campaign = None  # the button is offered to those the view would let decide
        return super().change_view(request, object_id, form_url, {**ab_decide_context(campaign),
                                                                   **(extra_context or {})})

    def _editable(self, obj) -> bool:
        return obj is None or obj.state == Campaign.State.DRAFT

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = CampaignForm if self._editable(obj) else ReadOnlyCampaignForm
        kwargs["fields"] = ()
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        status = ("Status", {"fields": _STATUS})
        if obj is None:
            return _FORM_FIELDSETS
        if self._editable(obj):
            return (*_FORM_FIELDSETS, status)
        return ((None, {"fields": _READ_ONLY}), status)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return _STATUS if self._editable(obj) else (*_READ_ONLY, *_STATUS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a started campaign's rows are not deleted from a list page
        return actions

    def has_change_permission(self, request, obj=None):
        # Past draft the page is view-only (no save buttons); the list's actions still apply.
        return super().has_change_permission(request, obj) and self._editable(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and obj is not None and obj.state == Campaign.State.DRAFT

    def save_model(self, request, obj, form, change):
        if change:
            saved = campaign_update(tenant=obj.tenant, campaign_id=obj.pk, data=form.body, actor=request.user,
                                    ip=client_ip(request))
        else:
            saved = campaign_create(tenant=form.cleaned_data["tenant"], data=form.body, actor=request.user,
                                    ip=client_ip(request))
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False

    @admin.display(description="progress")
    def progress(self, obj):
        if obj._state.adding:
            return "—"
        return ", ".join(f"{k}: {v}" for k, v in campaign_progress(obj).items())

    @admin.display(description="metrics")
    def metrics(self, obj):
        if obj._state.adding:
            return "—"
        figures = campaign_metrics(obj)
        rates = figures.pop("rates")
        reconciled = figures.pop("reconciled_at")
        counts = format_html_join(", ", "{}: <b>{}</b>", figures.items())
        shown = format_html_join(", ", "{}: {}%", ((k.replace("_rate", ""), v) for k, v in rates.items()
                                                    if v is not None))
        when = f"reconciled {timezone.localtime(reconciled):%Y-%m-%d %H:%M}" if reconciled else "live counters"
        return format_html('<span id="campaign-metrics">{}</span><br>{} <small>({})</small>', counts,
                           shown or "no rates yet", when)

    @admin.display(description="A/B test")
    def ab_results(self, obj):
        """Per variant: sends, rate, P(best), p-value vs the control; then the decision or when it is due."""
        if obj._state.adding or not obj.ab_test:
            return "—"
        result = campaign_results(campaign=obj)
        pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
        rows = format_html_join("", "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                "<td>{}</td></tr>", ((r["key"], r["trials"], pct(r["rate"]), pct(r["prob_best"]),
                                                     "—" if r["p_value"] is None else f"{r['p_value']:.4f}",
                                                     "yes" if r["sample_reached"] else "no")
                                                    for r in result["variants"]))
        cfg, due = obj.ab_test, abtest_due_at(obj)
        state = (f"winner {cfg['winner']} ({cfg.get('winner_reason', '')})" if cfg.get("winner")
                 else f"winner chosen at {timezone.localtime(due):%Y-%m-%d %H:%M}" if due else "not started")
        state += (f" · sample {cfg.get('sample_percent', 0):g} % per variant, wait {cfg.get('wait_hours', 0):g} h, "
                  f"min {cfg.get('min_sample')}, default {cfg.get('default_variant')}, mde {cfg.get('mde')}")
        return format_html(
            '<table id="campaign-ab"><caption>{} · control {} · needed per variant {} · rate = {}</caption>'
            '<thead><tr><th scope="col">variant</th><th scope="col">sent</th><th scope="col">rate</th>'
            '<th scope="col">P(best)</th><th scope="col" title="two-proportion test vs the control">p</th>'
            '<th scope="col" title="sample size reached">n ok</th></tr></thead><tbody>{}</tbody></table>',
            state, result["control"],
            result["needed_per_variant"] or "—", result["metric"], rows)


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ("tenant", "name", "description", "filter")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # the name is the segment's key in the API and in campaigns
            for name in ("tenant", "name"):
                self.fields[name].disabled = True

    def clean_filter(self):
        try:
            return filter_validate(self.cleaned_data.get("filter"))
        except errors.CommsError as exc:
            raise _form_error(exc) from None


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ("name", "tenant", "description")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        saved, _ = segment_save(tenant=obj.tenant, name=obj.name, spec=obj.filter, description=obj.description,
                                actor=request.user, ip=client_ip(request))
        obj.pk = saved.pk
        obj._state.adding = False

    def has_delete_permission(self, request, obj=None):
        in_use = obj is not None and Campaign.objects.filter(segment=obj).exists()
        return super().has_delete_permission(request, obj) and not in_use

    def delete_model(self, request, obj):
        try:
            segment_delete(tenant=obj.tenant, name=obj.name, actor=request.user, ip=client_ip(request))
        except errors.CommsError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)

    def delete_queryset(self, request, queryset):
        for segment in queryset:
            self.delete_model(request, segment)

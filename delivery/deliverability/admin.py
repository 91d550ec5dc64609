"""Sending domains in the admin (registered by delivery/admin.py): the records to publish, copy-ready,
the keys and their states, the last DNS check; actions to check now and to rotate the keys.
Every change goes through the deliverability services (audited there)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from comms import errors
from delivery.deliverability import dkim
from delivery.deliverability.domains import (
    LIVE, domain_normalise, sending_domain_create, sending_domain_records, sending_domain_rotate,
)
from delivery.deliverability.models import SendingDomain
from delivery.deliverability.monitor import sending_domain_check

BADGE = {"ok": "#047857", "warn": "#b45309", "fail": "#b91c1c", "unknown": "#6b7280"}


def badge(status: str):
    return format_html('<strong class="dns-{}" style="color:{}">{}</strong>', status, BADGE.get(status, "#6b7280"),
                       status)


class SendingDomainAddForm(forms.ModelForm):
    """Only what a person chooses: tenant and domain; keys and records are generated."""

    domain = forms.CharField(max_length=300, help_text="e.g. example.com or bücher.example (stored in IDNA form)")

    class Meta:
        model = SendingDomain
        fields = ["tenant", "domain"]

    def clean_domain(self):
        try:
            return domain_normalise(self.cleaned_data["domain"])
        except errors.InvalidDomain as exc:
            raise forms.ValidationError(exc.message) from None


class SendingDomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "status_badge", "checked_at", "selectors")
    list_filter = ("check_status", "tenant")
    search_fields = ("domain",)
    actions = ["check_now", "rotate_keys"]
    readonly_fields = ("domain", "tenant", "return_path", "status_badge", "checked_at", "keys_table", "records_table",
                       "last_check_table")
    fieldsets = ((None, {"fields": ("domain", "tenant", "return_path", "status_badge", "checked_at")}),
                 ("DKIM keys", {"fields": ("keys_table",)}),
                 ("DNS records to publish", {"fields": ("records_table",)}),
                 ("Last DNS check", {"fields": ("last_check_table",)}))

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = SendingDomainAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        return ((None, {"fields": ("tenant", "domain")}),) if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing is edited in place: keys rotate through the action
        try:
            created = sending_domain_create(tenant=form.cleaned_data["tenant"], domain=form.cleaned_data["domain"],
                                            actor=request.user)
        except errors.CommsError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            created = SendingDomain.objects.get(tenant=form.cleaned_data["tenant"], domain=form.cleaned_data["domain"])
        obj.pk, obj.return_path, obj.created_at = created.pk, created.return_path, created.created_at
        dkim.cache_clear()

    @admin.display(description="DNS health", ordering="check_status")
    def status_badge(self, obj):
        return badge(obj.check_status)

    @admin.display(description="selectors")
    def selectors(self, obj):
        return ", ".join(f"{k.selector} ({k.state})" for k in obj.keys.filter(state__in=LIVE))

    @admin.display(description="keys")
    def keys_table(self, obj):
        rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (k.selector, k.get_algorithm_display(), k.state, f"{k.retire_at:%Y-%m-%d %H:%M} UTC" if k.retire_at else "")
            for k in obj.keys.filter(state__in=LIVE)))
        return format_html('<div class="dns-scroll"><table><tr><th>selector</th><th>algorithm</th><th>state</th>'
                           "<th>published until</th></tr>{}</table></div>", rows)

    @admin.display(description="records")
    def records_table(self, obj):
        """Each record as name / type / value, the value in a read-only box that selects whole on click."""
        rows = format_html_join("", (
            '<tr><td><code class="dns-name">{}</code></td><td>{}</td>'
            '<td><textarea class="dns-value" readonly rows="{}" aria-label="{} value">{}</textarea><br>'
            "<small>{}</small></td></tr>"), (
            (r["name"], r["type"], min(6, 1 + len(r["value"]) // 60), r["name"],
             " ".join(f'"{s}"' for s in r["strings"]) if r["strings"] and len(r["strings"]) > 1 else r["value"],
             r["purpose"]) for r in sending_domain_records(obj)))
        return format_html('<div class="dns-scroll"><table class="dns-records"><tr><th>name</th><th>type</th>'
                           "<th>value (TXT longer than 255 bytes: as quoted strings)</th></tr>{}</table></div>", rows)

    @admin.display(description="checks")
    def last_check_table(self, obj):
        check = obj.checks.first()
        if check is None:
            return "not checked yet: use the action “Run the DNS checks now”"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (name, badge(r["status"]), r["detail"]) for name, r in check.results.items()))
        return format_html('<div class="dns-scroll"><table><tr><th>check</th><th>result</th><th>detail</th></tr>{}'
                           "</table></div><small>checked {:%Y-%m-%d %H:%M:%S} UTC</small>", rows, check.checked_at)

    @admin.action(description="Run the DNS checks now", permissions=["change"])
    def check_now(self, request, queryset):
        for domain in queryset[:50]:
            check = sending_domain_check(domain=domain, actor=request.user)
            self.message_user(request, f"{domain.domain}: {check.status}",
                              messages.SUCCESS if check.status == "ok" else messages.WARNING)

    @admin.action(description="Rotate DKIM keys (new selectors sign once published and checked)",
                  permissions=["change"])
    def rotate_keys(self, request, queryset):
        for domain in queryset[:50]:
            fresh = sending_domain_rotate(domain=domain, actor=request.user)
            self.message_user(request, f"{domain.domain}: publish {', '.join(k.selector for k in fresh)}, then check")


"""Staged rollouts in the admin: a rollout's page (current %, schedule, guardrails, why it was rolled back)
with advance / pause / resume / roll back buttons, the start form of an approved version, and the summary
the template's page shows. Imported by templates_app/admin.py; every change goes through templates_app.rollout."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from comms import errors
from templates_app import rollout as service
from templates_app.models import Template, TemplateRollout, TemplateVersion

APPROVER = "templates_app.approve_template"


def rollout_form_values(post: Any) -> dict:
    """The admin's rollout inputs: a percentage, steps as "25, 100" and hours between steps."""
    def number(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text  # the service answers with its typed error naming the bad value

    out: dict[str, Any] = {"percent": number(post.get("rollout_percent", "").strip() or "5")}
    steps = [s.strip() for s in post.get("rollout_schedule", "").split(",") if s.strip()]
    out["schedule"] = [number(s) for s in steps]
    hours = post.get("rollout_step_hours", "").strip()
    if hours:
        try:
            out["step_seconds"] = max(1, round(float(hours) * 3600))
        except ValueError:
            raise errors.ValidationFailed(f"Hours between steps: a number, not {hours!r}.") from None
    return out


def rollout_summary(template: Template) -> str:
    """The template page's line: the open (or latest) rollout and a link to its page."""
    rollout = template.rollouts.select_related("version", "previous").order_by("-started_at", "-pk").first()
    if rollout is None:
        return "No rollout yet (start one from an approved version's page)."
    url = reverse("admin:templates_app_templaterollout_change", args=[rollout.pk])
    why = rollout.rollback_reason or {}
    return format_html(
        '<span class="comms-rollout" data-state="{}"><a href="{}">v{} → {} % ({})</a>{}</span>', rollout.state, url,
        rollout.version.version, f"{rollout.percent:g}", rollout.get_state_display(),
        format_html(" — rolled back: {} {}", why.get("metric", ""), why.get("reason", "")) if why else "")


@admin.register(TemplateRollout)
class TemplateRolloutAdmin(admin.ModelAdmin):
    list_display = ("template", "version_label", "state", "percent", "started_at", "finished_at")
    list_filter = ("state",)
    change_form_template = "admin/templates_app/templaterollout/change_form.html"
    fields = ("template", "version", "previous", "state", "percent", "schedule", "step_seconds", "next_step_at",
              "min_volume", "started_by", "started_at", "finished_at")
    readonly_fields = fields

    @admin.display(description="version")
    def version_label(self, obj):
        return f"v{obj.version.version} (from v{obj.previous.version})"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("template", "version", "previous")

    def has_add_permission(self, request):
        return False  # started from an approved version's page (or the API)

    def has_change_permission(self, request, obj=None):
        return False  # the buttons below are the only changes

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rollout = get_object_or_404(self.get_queryset(request), pk=object_id)
        metrics = (rollout.guardrail_status or {}).get("metrics", {})
        extra = {"rollout": rollout, "metrics": metrics, "can_act": request.user.has_perm(APPROVER) and rollout.open,
                 "next_step": rollout.schedule[0] if rollout.schedule else 100, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        own = [path("<int:pk>/act/<str:step>/", self.admin_site.admin_view(require_POST(self.act)),
                    name="templates_app_templaterollout_act"),
               path("start/<int:version_id>/", self.admin_site.admin_view(require_POST(self.start)),
                    name="templates_app_templaterollout_start")]
        return own + super().get_urls()

    def act(self, request: HttpRequest, pk: int, step: str):
        rollout = get_object_or_404(TemplateRollout, pk=pk)
        back = HttpResponseRedirect(reverse("admin:templates_app_templaterollout_change", args=[pk]))
        if not request.user.has_perm(APPROVER):
            self.message_user(request, "Refused: changing a rollout needs the approver role.", messages.ERROR)
            return back
        try:
            if step == "advance":
                raw = request.POST.get("advance_percent", "").strip()
                percent = rollout_form_values({"rollout_percent": raw})["percent"] if raw else None
                rollout = service.rollout_advance(rollout=rollout, actor=request.user, percent=percent)
            elif step in ("pause", "resume"):
                rollout = service.rollout_pause(rollout=rollout, actor=request.user, resume=step == "resume")
            elif step == "rollback":
                rollout = service.rollout_rollback(rollout=rollout, actor=request.user,
                                                   reason=request.POST.get("rollback_reason", "")[:500])
            else:
                raise errors.NotFound("Unknown step.")
            self.message_user(request, f"Rollout {rollout.get_state_display().lower()} at {rollout.percent:g} %.",
                              messages.SUCCESS)
        except errors.CommsError as exc:
            self.message_user(request, f"{exc.message} ({exc.code})", messages.ERROR)
        return back

    def start(self, request: HttpRequest, version_id: int):
        version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=version_id)
        back = HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[version_id]))
        if not request.user.has_perm(APPROVER):
            self.message_user(request, "Refused: starting a rollout needs the approver role.", messages.ERROR)
            return back
        try:
            rollout = service.rollout_start(template=version.template, version=version, actor=request.user,
                                            **rollout_form_values(request.POST))
        except errors.CommsError as exc:
            self.message_user(request, f"{exc.message} ({exc.code})", messages.ERROR)
            return back
        self.message_user(request, f"Rollout of v{version.version} started at {rollout.percent:g} %.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:templates_app_templaterollout_change", args=[rollout.pk]))

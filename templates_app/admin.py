"""Template management in the Django admin: drafts with per-locale content, previews, review workflow,
version history with a side-by-side diff. The test send and experiment split buttons on a version's page
post to the console's cross-app views (admin_console/site.py): a test send goes through delivery, above us."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from comms import errors
from comms.audit import client_ip
from comms.forms import ChoiceArrayAdminMixin
from comms.services import tenant_get_default
from templates_app import rendering, services
from templates_app.assist.admin import AssistantAdminMixin
from templates_app.locale_admin import LocaleCoverageAdminMixin
from templates_app.models import Template, TemplateLocale, TemplateReview, TemplateVersion
from templates_app.previews_admin import PreviewImagesAdminMixin
from templates_app.quality.admin_views import lint_override_view, lint_report_html
from templates_app.rollout import version_approve_and_roll_out
from templates_app.rollout_admin import TemplateRolloutAdmin, rollout_form_values, rollout_summary  # noqa: F401 (registers)
from templates_app.services.admin_forms import template_settings_save, version_fields_save
from templates_app.version_diff import version_diff


class TemplateLocaleForm(forms.ModelForm):
    """Nothing that fails to compile is saved: the error names the part, line and column."""

    class Meta:
        model = TemplateLocale
        fields = ["locale", "subject", "body_html", "body_text", "push_title", "push_body", "sms_text",
                  "in_app_content", "voice_text"]
        widgets = {f: forms.Textarea(attrs={"rows": 3, "cols": 90}) for f in ("subject", "body_text", "push_body",
                                                                                 "sms_text", "voice_text")}
        widgets["body_html"] = forms.Textarea(attrs={"rows": 14, "cols": 90, "style": "font-family: monospace"})

    def clean(self):
        data = super().clean()
        version = self.instance.version if self.instance.version_id else getattr(self, "parent_version", None)
        trusted = bool(version and version.template.trusted)
        try:
            if data.get("body_html"):
                rendering.check_trusted_syntax(data["body_html"], trusted=trusted, part="body_html")
                rendering.compile_handlebars(rendering.compile_mjml(data["body_html"]), part="body_html")
            for part in ("subject", "body_text", "push_title", "push_body", "sms_text", "voice_text"):
                if data.get(part):
                    rendering.compile_handlebars(rendering.as_text_source(data[part]), part=part)
        except rendering.TemplateSyntaxError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class TemplateLocaleInline(admin.StackedInline):
    model = TemplateLocale
    form = TemplateLocaleForm
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.parent_version = obj
        return formset


class TemplateReviewInline(admin.TabularInline):
    model = TemplateReview
    extra = 0
    can_delete = False
    readonly_fields = ("at", "reviewer", "decision", "notes")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    extra = 0
    can_delete = False
    fields = ("link", "status", "change_notes", "creator", "submitted_at", "approved_at", "activated_at")
    readonly_fields = fields
    ordering = ("-version",)

    @admin.display(description="version")
    def link(self, obj):
        url = reverse("admin:templates_app_templateversion_change", args=[obj.pk])
        return format_html('<a href="{}">v{}</a>', url, obj.version)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Template)
class TemplateAdmin(LocaleCoverageAdminMixin, ChoiceArrayAdminMixin, admin.ModelAdmin):  # channels: checkboxes
    list_display = ("template_key", "name", "category", "channels", "live_version", "latest_status", "locales")
    list_filter = ("category", "tenant")
    search_fields = ("template_key", "name")
    inlines = [TemplateVersionInline]
    exclude = ("created_by", "created_by_key")
    readonly_fields = ("active_version", "rollout", "creator", "created_at", "updated_at", "history",
                       "locale_coverage")
    actions = ["new_draft"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("active_version").prefetch_related("versions__locales")

    @admin.display(description="live")
    def live_version(self, obj):
        return f"v{obj.active_version.version}" if obj.active_version else "—"

    @admin.display(description="staged rollout")
    def rollout(self, obj):
        return rollout_summary(obj)

    @admin.display(description="latest")
    def latest_status(self, obj):
        latest = max(obj.versions.all(), key=lambda v: v.version, default=None)
        return f"v{latest.version} {latest.get_status_display()}" if latest else "—"

    @admin.display(description="locales")
    def locales(self, obj):
        latest = max(obj.versions.all(), key=lambda v: v.version, default=None)
        return ", ".join(r.locale for r in latest.locales.all()) if latest else ""

    def get_changeform_initial_data(self, request):
        return {"tenant": tenant_get_default().pk, **super().get_changeform_initial_data(request)}

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None:  # nothing to show yet about versions and history
            fields = [f for f in fields if f not in self.readonly_fields]
        return fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("template_key")
        if not request.user.has_perm("templates_app.use_raw_html"):
            fields.append("trusted")
        return fields

    def save_model(self, request, obj, form, change):
        # A new template starts with an empty draft in its default locale (the service creates it).
        template_settings_save(template=obj, created=not change, changed=form.changed_data, actor=request.user,
                               ip=client_ip(request))

    def response_add(self, request, obj, post_url_continue=None):
        draft = obj.versions.order_by("-version").first()
        return HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[draft.pk]))

    @admin.action(description="Open a new draft version (copy of the latest)")
    def new_draft(self, request, queryset):
        for template in queryset:
            draft = services.template_edit(template=template, actor=request.user, data={}, user=request.user)
            self.message_user(request, f"{template.template_key}: draft v{draft.version} is open for editing.")

    @admin.display(description="Version history")
    def history(self, obj: Template):
        versions = list(obj.versions.order_by("-version").select_related("created_by", "created_by_key"))
        if not versions:
            return "—"
        rows = format_html_join("", "<tr><td><a href='{}'>v{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                    "<td>{}</td></tr>", (
            (reverse("admin:templates_app_templateversion_change", args=[v.pk]), v.version, v.get_status_display(),
             "live" if v.pk == obj.active_version_id else "", v.creator, v.change_notes[:80],
             format_html("<a href='{}?a={}&amp;b={}'>diff with v{}</a>", reverse("admin:templates_app_template_diff",
                                                                               args=[obj.pk]),
                         v.version - 1, v.version, v.version - 1) if v.version > 1 else "")
            for v in versions))
        return format_html("<table id='version-history'><thead><tr><th>version</th><th>status</th><th></th><th>author"
                           "</th><th>notes</th><th>compare</th></tr></thead><tbody>{}</tbody></table>", rows)

    def get_urls(self):
        own = [path("<int:pk>/diff/", self.admin_site.admin_view(self.diff_view), name="templates_app_template_diff")]
        return own + super().get_urls()

    def diff_view(self, request: HttpRequest, pk: int):
        template = get_object_or_404(Template, pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        versions = list(template.versions.order_by("-version").prefetch_related("locales"))
        if not versions:
            return HttpResponseRedirect(reverse("admin:templates_app_template_change", args=[pk]))
        by_number = {v.version: v for v in versions}

        def pick(name: str, default: TemplateVersion) -> TemplateVersion:
            try:
                return by_number.get(int(request.GET.get(name, "")), default)
            except ValueError:
                return default

        b = pick("b", versions[0])
        a = pick("a", by_number.get(b.version - 1, versions[-1]))
        context = {**self.admin_site.each_context(request), "template": template, "versions": versions, "a": a,
                   "b": b, "parts": version_diff(a, b), "title": f"Compare versions of {template.template_key}",
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/templates_app/template/diff.html", context)


def spam_verdict_html(spam: dict | None):
    """SpamAssassin's verdict for the author and the approver: the score and each rule that fired."""
    if not spam:
        return ""
    if not spam.get("available"):
        return format_html('<p class="comms-spam comms-spam-unavailable">Spam check unavailable ({})</p>',
                           spam.get("error", ""))
    rules = format_html_join("", "<li><code>{}</code> {} — {}</li>",
                             ((r["name"], r["score"], r["description"]) for r in spam.get("rules", []) if r["score"]))
    over = spam["score"] >= (spam.get("threshold") or 5.0)
    return format_html('<div class="comms-spam" data-over="{}"><p><b>{}</b></p><ul>{}</ul></div>',
                       "yes" if over else "no", spam.get("label", ""), rules)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(AssistantAdminMixin, PreviewImagesAdminMixin, admin.ModelAdmin):  # + Chromium screenshots (previews_admin)
    list_display = ("__str__", "status", "creator", "submitted_at", "approved_at", "activated_at")
    list_filter = ("status",)
    inlines = [TemplateLocaleInline, TemplateReviewInline]
    fields = ("template", "version", "status", "change_notes", "variables_schema", "sample_variables", "experiment",
              "review_notes", "lint_report", "spam_at_submit", "preview", "rendered_previews", "assistant")
    readonly_fields = ("template", "version", "status", "review_notes", "lint_report", "spam_at_submit", "preview",
                       "rendered_previews", "assistant")
    change_form_template = "admin/templates_app/templateversion/change_form.html"

    def has_add_permission(self, request):
        return False  # versions come from templates (new template, new draft)

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.editable:
            return False  # submitted versions are immutable; the workflow buttons still work
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"test_allowlist": settings.COMMS_TEST_SEND_ALLOWLIST, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        version_fields_save(version=obj, changed=form.changed_data, actor=request.user, ip=client_ip(request))

    @admin.display(description="Spam score at submit")
    def spam_at_submit(self, obj):
        return spam_verdict_html(obj.spam_report) if obj.spam_report else "not submitted yet"

    @admin.display(description="Accessibility and dark-mode lint")
    def lint_report(self, obj):
        return lint_report_html(obj)

    @admin.display(description="Preview (sample variables)")
    def preview(self, obj):
        try:
            data = services.template_preview(version=obj, variables=None, spam_check=True)
        except errors.CommsError as exc:
            return format_html('<p class="errornote">{}</p>', exc.message)
        blocks = []
        for channel, out in data["channels"].items():
            problems = format_html_join("", "<li>{}</li>", ((p,) for p in out.get("problems", [])))
            if channel == "email":
                body = format_html(
                    '<p><b>Subject:</b> {}</p><iframe sandbox="" title="email preview" srcdoc="{}" '
                    'style="width: 640px; height: 420px; border: 1px solid #ccc; background: #fff"></iframe>'
                    '<details><summary>Text part</summary><pre>{}</pre></details>',
                    out.get("subject", ""), out.get("html", ""), out.get("text", ""))
                body = format_html("{}{}", spam_verdict_html(out.get("spam")), body)
            elif channel == "sms":
                body = format_html("<pre>{}</pre><p>{} · {} units · {} segment(s)</p>", out.get("text", ""),
                                   out.get("encoding", ""), out.get("units", 0), out.get("segments", 0))
            elif channel == "push":
                body = format_html("<p><b>{}</b><br>{}</p>", out.get("title", ""), out.get("body", ""))
            elif channel == "voice":  # what the call says (escaped here like everywhere; TwiML-escaped when sent)
                body = format_html("<p>{}</p>", out.get("text", ""))
            else:
                body = format_html("<pre>{}</pre>", json.dumps(out.get("content", {}), indent=2, ensure_ascii=False))
            blocks.append(format_html('<div class="comms-preview" data-channel="{}"><h3>{}</h3>{}<ul class="comms-problems">{}</ul></div>',
                                      channel, channel, body, problems))
        variable_problems = format_html_join("", "<li>{}</li>", ((p,) for p in data["variable_problems"]))
        return format_html('<div>{}<ul class="comms-problems">{}</ul></div>', format_html_join("", "{}", ((b,) for b in blocks)),
                           variable_problems)

    # -- workflow -----------------------------------------------------------------------------------
    def get_urls(self):
        own = [path("<int:pk>/workflow/<str:step>/", self.admin_site.admin_view(self.workflow),
                    name="templates_app_templateversion_workflow"),
               path("<int:pk>/lint-override/", self.admin_site.admin_view(lint_override_view),
                    name="templates_app_templateversion_lint_override")]
        return own + super().get_urls()

    # Which role each workflow step needs (the services check approvals again; submit had no check).
    STEP_PERMISSIONS = {"submit": "templates_app.change_templateversion",
                        "approve": "templates_app.approve_template",
                        "approve_rollout": "templates_app.approve_template",
                        "request_changes": "templates_app.approve_template",
                        "activate": "templates_app.approve_template"}

    def workflow(self, request: HttpRequest, pk: int, step: str):
        needed = self.STEP_PERMISSIONS.get(step)
        if request.method == "POST" and needed and not request.user.has_perm(needed):
            self.message_user(request, f"Refused: '{step}' needs the {'approver' if 'approve' in needed else 'editor'}"
                                       " role.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[pk]))
        return require_POST(self._workflow)(request, pk, step)

    def _workflow(self, request: HttpRequest, pk: int, step: str):
        version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
        notes = request.POST.get(f"{step}_notes", "")
        try:
            if step == "submit":
                services.version_submit(version=version, actor=request.user, user=request.user)
                done = "submitted for review"
            elif step == "approve":
                version = services.version_approve(version=version, user=request.user, notes=notes)
                done = "approved and live" if version.status == "approved" else "approved; a second approver is needed"
            elif step == "approve_rollout":  # the last approval starts a staged rollout instead of going live
                version = version_approve_and_roll_out(version=version, user=request.user, notes=notes,
                                                       **rollout_form_values(request.POST))
                done = "approved; rollout started" if version.status == "approved" else \
                    "approved; a second approver is needed (ask them to start the rollout)"
            elif step == "request_changes":
                services.version_request_changes(version=version, user=request.user, notes=notes)
                done = "sent back to draft"
            elif step == "activate":
                services.version_activate(version=version, user=request.user, reason=notes or "rollback")
                done = "activated"
            else:
                raise errors.NotFound("Unknown step.")
            self.message_user(request, f"{version}: {done}.", messages.SUCCESS)
        except errors.CommsError as exc:
            detail = exc.details.get("problems") if isinstance(exc.details, dict) else None
            self.message_user(request, f"{version}: {exc.message}" + (f" ({'; '.join(detail[1:4])})" if detail and
                                                                        len(detail) > 1 else ""), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[pk]))

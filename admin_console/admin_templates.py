"""Console additions to the template admin: version history with a side-by-side diff, test sends to
allow-listed addresses, experiment split (staged rollout of a variant)."""

from __future__ import annotations

import difflib
import json

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
from delivery.services.editor_send import template_test_send
from templates_app.admin import TemplateAdmin as BaseTemplateAdmin
from templates_app.admin import TemplateVersionAdmin as BaseVersionAdmin
from templates_app.models import Template, TemplateVersion
from templates_app.services import experiment_weights_set

LOCALE_PARTS = ("subject", "body_html", "body_text", "push_title", "push_body", "sms_text", "in_app_content")
VERSION_PARTS = ("variables_schema", "sample_variables", "experiment", "change_notes")


def _lines(value) -> list[str]:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value else ""
    return str(value or "").splitlines()


def version_diff(a: TemplateVersion, b: TemplateVersion) -> list[dict]:
    """Side-by-side HTML tables (difflib) for every part that differs between two versions."""
    differ = difflib.HtmlDiff(tabsize=2, wrapcolumn=70)
    parts = []
    for field in VERSION_PARTS:
        left, right = _lines(getattr(a, field)), _lines(getattr(b, field))
        parts.append({"label": field, "table": differ.make_table(left, right, f"v{a.version}", f"v{b.version}",
                                                                 context=True, numlines=3)
                      if left != right else ""})
    rows_a = {r.locale: r for r in a.locales.all()}
    rows_b = {r.locale: r for r in b.locales.all()}
    for locale in sorted(set(rows_a) | set(rows_b)):
        for field in LOCALE_PARTS:
            left = _lines(getattr(rows_a[locale], field)) if locale in rows_a else []
            right = _lines(getattr(rows_b[locale], field)) if locale in rows_b else []
            if left or right:
                parts.append({"label": f"[{locale}] {field}",
                              "table": differ.make_table(left, right, f"v{a.version}", f"v{b.version}",
                                                         context=True, numlines=3) if left != right else ""})
    return parts


admin.site.unregister(Template)
admin.site.unregister(TemplateVersion)


@admin.register(Template)
class TemplateAdmin(BaseTemplateAdmin):
    readonly_fields = (*BaseTemplateAdmin.readonly_fields, "history")

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
        return TemplateResponse(request, "admin/admin_console/template_diff.html", context)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(BaseVersionAdmin):
    change_form_template = "admin/admin_console/templateversion_change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"test_allowlist": settings.COMMS_TEST_SEND_ALLOWLIST, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        own = [
            path("<int:pk>/test-send/", self.admin_site.admin_view(require_POST(self.test_send_view)),
                 name="templates_app_templateversion_test_send"),
            path("<int:pk>/weights/", self.admin_site.admin_view(require_POST(self.weights_view)),
                 name="templates_app_templateversion_weights"),
        ]
        return own + super().get_urls()

    # Which role each workflow step needs (the services check approvals again; submit had no check).
    STEP_PERMISSIONS = {"submit": "templates_app.change_templateversion",
                        "approve": "templates_app.approve_template",
                        "request_changes": "templates_app.approve_template",
                        "activate": "templates_app.approve_template"}

    def workflow(self, request: HttpRequest, pk: int, step: str):
        needed = self.STEP_PERMISSIONS.get(step)
        if request.method == "POST" and needed and not request.user.has_perm(needed):
            self.message_user(request, f"Refused: '{step}' needs the {'approver' if 'approve' in needed else 'editor'}"
                                       " role.", messages.ERROR)
            return self._back(pk)
        return super().workflow(request, pk, step)

    def _back(self, pk: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[pk]))

    def test_send_view(self, request: HttpRequest, pk: int):
        version = get_object_or_404(TemplateVersion.objects.select_related("template__tenant"), pk=pk)
        address = request.POST.get("test_address", "").strip()
        try:
            message = template_test_send(version=version, user=request.user, address=address,
                                         channel=request.POST.get("test_channel", "email"), ip=client_ip(request))
        except errors.CommsError as exc:
            self.message_user(request, f"Test not sent: {exc.message}", messages.ERROR)
            return self._back(pk)
        url = reverse("admin:delivery_message_change", args=[message.id])
        self.message_user(request, format_html('Test of {} queued for {}: <a href="{}">message {}</a>.', version,
                                               address, url, message.id), messages.SUCCESS)
        return self._back(pk)

    def weights_view(self, request: HttpRequest, pk: int):
        version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
        weights = {}
        try:
            for key, value in request.POST.items():
                if key.startswith("weight_"):
                    weights[key[len("weight_"):]] = float(value)
            experiment_weights_set(version=version, user=request.user, weights=weights,
                                   reason=request.POST.get("weights_reason", ""), ip=client_ip(request))
        except ValueError:
            self.message_user(request, "Weights are numbers.", messages.ERROR)
        except errors.CommsError as exc:
            self.message_user(request, f"Split not changed: {exc.message}", messages.ERROR)
        else:
            split = ", ".join(f"{k} {v:g}" for k, v in weights.items())
            self.message_user(request, f"{version}: experiment split is now {split}.", messages.SUCCESS)
        return self._back(pk)

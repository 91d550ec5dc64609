"""The "Assistant" panel on a version's admin page: SMS compression and variable warnings (always), and
buttons for subject suggestions and draft translations when a language model is configured (else the panel
says the assistant is off). Buttons post the page's own form via formaction (no scripts: our CSP)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from comms import errors
from templates_app.assist import services
from templates_app.assist.llm import assistant_status
from templates_app.models import TemplateVersion

_WRAP = "white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%; margin: 4px 0"
# The admin's aligned-form CSS indents <ul> and p.help by 160 px (for a label column): undone in the panel.
_LIST = "margin: 0 0 8px; padding-left: 1.2em"
_HELP = "padding-left: 0; margin: 4px 0"


def _sms_html(version: TemplateVersion):
    rows = services.assist_sms_compress(version=version, text=None)["suggestions"]
    if not rows:
        return format_html("<p>{}</p>", "No SMS text.")
    items = []
    for s in rows:
        b, a = s["before"], s["after"]
        if not s["changed"]:
            items.append(format_html('<li data-locale="{}" data-changed="no">{}: fits ({} · {} segment(s)); '
                                     'nothing to suggest.</li>', s["locale"], s["locale"], b["encoding"], b["segments"]))
            continue
        items.append(format_html(
            '<li data-locale="{}" data-changed="yes"><b>{}</b>: {} · {} segment(s) → {} · {} segment(s){}'
            '<pre class="comms-assist-suggestion" style="{}">{}</pre><small>{}</small></li>',
            s["locale"], s["locale"], b["encoding"], b["segments"], a["encoding"], a["segments"],
            "" if s["fits"] else " (still over one segment: shorten the wording)", _WRAP, s["suggestion"],
            "; ".join(s["changes"])))
    return format_html('<ul class="comms-assist-sms" style="{}">{}</ul><p class="help" style="{}">A suggestion only: '
                       'copy it into the SMS text of a draft to use it.</p>', _LIST,
                       format_html_join("", "{}", ((i,) for i in items)), _HELP)


def _variables_html(version: TemplateVersion):
    warnings = services.assist_variables(version=version)["warnings"]
    if not warnings:
        return format_html('<p class="comms-assist-vars-ok" style="margin: 0">{}</p>',
                           "Variables: the schema and the content agree.")
    items = format_html_join("", '<li data-code="{}">{} <small>({})</small></li>', (
        (w["code"], w["message"], ", ".join("/".join(str(v) for v in loc.values()) for loc in w["locations"]))
        for w in warnings))
    return format_html('<ul class="comms-assist-vars" style="{}">{}</ul>', _LIST, items)


class AssistantAdminMixin:
    """Adds the ``assistant`` read-only field and the two POST views its buttons use."""

    def assistant(self, obj: TemplateVersion):
        if obj is None or obj.pk is None:
            return ""
        state = assistant_status()
        if state["enabled"]:
            llm = format_html(
                '<p class="comms-assist-on">Writing assistant: {} at {}. Its output is a suggestion or a draft; '
                'nothing goes live without review.</p>'
                '<p><button type="submit" class="button" name="assist_subjects" formaction="{}">Suggest subject lines'
                '</button></p><p><label for="assist_locales">Draft translations into</label> '
                '<input type="text" id="assist_locales" name="assist_locales" size="20" placeholder="fr, es-MX"> '
                '<button type="submit" class="button" name="assist_translate" formaction="{}">Draft translations'
                '</button></p>', state["model"], state["endpoint"],
                reverse("admin:templates_app_templateversion_assist", args=[obj.pk, "subjects"]),
                reverse("admin:templates_app_templateversion_assist", args=[obj.pk, "translate"]))
        else:
            llm = format_html('<p class="comms-assist-off">{}</p>', state["message"])
        head = "margin: 8px 0 4px; padding: 0"
        return format_html('<div class="comms-assist" style="max-width: 100%; min-width: 0"><h4 style="{}">SMS length'
                           '</h4>{}<h4 style="{}">Variables</h4>{}<h4 style="{}">Subject lines and translations</h4>{}'
                           '</div>', head, _sms_html(obj), head, _variables_html(obj), head, llm)

    assistant.short_description = "Assistant"

    def get_urls(self):
        own = [path("<int:pk>/assist/<str:step>/", self.admin_site.admin_view(require_POST(self.assist_view)),
                    name="templates_app_templateversion_assist")]
        return own + super().get_urls()

    def assist_view(self, request: HttpRequest, pk: int, step: str):
        version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        back = reverse("admin:templates_app_templateversion_change", args=[pk])
        try:
            if step == "subjects":
                result = services.assist_subjects(version=version, actor=request.user)
                return TemplateResponse(request, "admin/templates_app/assist/subjects.html", {
                    **self.admin_site.each_context(request), "title": f"Subject line suggestions for {version}",
                    "version": version, "result": result, "back": back})
            if step == "translate":
                if not request.user.has_perm("templates_app.change_templateversion"):
                    raise PermissionDenied
                locales = [p.strip() for p in request.POST.get("assist_locales", "").replace(";", ",").split(",")
                           if p.strip()]
                result = services.assist_translate(template=version.template, actor=request.user, user=request.user,
                                                   locales=locales)
                draft = version.template.versions.get(version=result["version"])
                done = ", ".join(result["created"]) or "nothing (those locales exist)"
                self.message_user(request, f"Draft translations into {done} written to draft v{draft.version}; "
                                           "review them, then submit.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[draft.pk]))
            raise errors.NotFound("Unknown assistant step.")
        except errors.CommsError as exc:
            self.message_user(request, f"Assistant: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(back)

"""The admin site, owned by the console: its look (site_templates, admin.css, no nav sidebar) and the
cross-app staff actions that belong to no single app's ModelAdmin.

Each app registers its own ModelAdmins in its admin.py; this site adds only views that span apps.
A template test send renders in templates_app and enqueues in delivery, so it cannot be a method of
templates_app's TemplateVersionAdmin (templates_app sits below delivery); it is a view here, at the URL
and name the version page has always posted to (admin:templates_app_templateversion_test_send).
Installed as Django's default site by ``admin_console.apps.ConsoleAdminConfig`` (Django's documented way
to override ``admin.site``: AdminConfig.default_site).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from admin_console.experiment_page import version_results
from comms import errors
from comms.audit import client_ip
from delivery.services.editor_send import template_test_send
from templates_app.models import TemplateVersion
from templates_app.services import experiment_weights_set


def _back(pk: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:templates_app_templateversion_change", args=[pk]))


def version_test_send(request: HttpRequest, pk: int) -> HttpResponseRedirect:
    """Send one version, rendered from its sample variables, to an allow-listed address (service checks)."""
    version = get_object_or_404(TemplateVersion.objects.select_related("template__tenant"), pk=pk)
    address = request.POST.get("test_address", "").strip()
    try:
        message = template_test_send(version=version, user=request.user, address=address,
                                     channel=request.POST.get("test_channel", "email"), ip=client_ip(request))
    except errors.CommsError as exc:
        messages.error(request, f"Test not sent: {exc.message}")
        return _back(pk)
    url = reverse("admin:delivery_message_change", args=[message.id])
    messages.success(request, format_html('Test of {} queued for {}: <a href="{}">message {}</a>.', version,
                                          address, url, message.id))
    return _back(pk)


def version_weights(request: HttpRequest, pk: int) -> HttpResponseRedirect:
    """Change the traffic split of a version's experiment variants (approvers; the service checks)."""
    version = get_object_or_404(TemplateVersion.objects.select_related("template"), pk=pk)
    weights = {}
    try:
        for key, value in request.POST.items():
            if key.startswith("weight_"):
                weights[key[len("weight_"):]] = float(value)
        experiment_weights_set(version=version, user=request.user, weights=weights,
                               reason=request.POST.get("weights_reason", ""), ip=client_ip(request))
    except ValueError:
        messages.error(request, "Weights are numbers.")
    except errors.CommsError as exc:
        messages.error(request, f"Split not changed: {exc.message}")
    else:
        split = ", ".join(f"{k} {v:g}" for k, v in weights.items())
        messages.success(request, f"{version}: experiment split is now {split}.")
    return _back(pk)


class ConsoleAdminSite(admin.AdminSite):
    # Without the app list down the left side a change list gets the page's full width beside its filters
    # (issue 13: ten columns did not fit 1280 px); the admin index and breadcrumbs still reach every model.
    enable_nav_sidebar = False

    def get_urls(self):
        # Ahead of the ModelAdmins' own patterns: their "<path:object_id>/" catch-all would take these paths.
        version = "templates_app/templateversion/<int:pk>"
        own = [
            path(f"{version}/test-send/", self.admin_view(require_POST(version_test_send)),
                 name="templates_app_templateversion_test_send"),
            path(f"{version}/weights/", self.admin_view(require_POST(version_weights)),
                 name="templates_app_templateversion_weights"),
            path(f"{version}/results/", self.admin_view(version_results),
                 name="templates_app_templateversion_results"),
        ]
        return own + super().get_urls()

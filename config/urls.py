from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from comms import webpush_api
from comms.api_docs import ApiDocsView
from comms.errors import json_400, json_403, json_404, json_500


def healthz(request):
    """Liveness for load balancers: the process answers; readiness lives at /api/v1/health."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    # delivery first: POST /api/v1/messages is the hot path, and no delivery pattern can match a
    # comms one (resolution tries patterns in order, so the send request skips ~20 misses).
    path("api/v1/", include("delivery.urls")),
    path("api/v1/", include("comms.urls")),
    path("api/v1/", include("comms.router.urls")),
    path("api/v1/", include("comms.campaigns.urls")),
    path("api/v1/", include("comms.conversations.urls")),
    path("api/v1/", include("templates_app.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz),
    path("webpush/sw.js", webpush_api.service_worker, name="webpush-sw"),
    path("webpush/subscribe", webpush_api.subscribe_page, name="webpush-subscribe"),
    path("webhooks/", include("webhooks.urls")),
    path("", include("tracking.urls")),
    path("", include("admin_console.urls")),
    path("api/v1/", include("preferences.urls")),
    path("", include("preferences.page_urls")),
    path("", include("comms.conversations.page_urls")),
]

handler400 = json_400
handler403 = json_403
handler404 = json_404
handler500 = json_500

"""/api/docs/: the API reference (Redoc) from our own static files, under our own CSP.

drf-spectacular's stock Redoc page loads Google Fonts, and by default Redoc from a CDN: our CSP blocks
both (and an air-gapped install cannot reach them), which left the page blank. drf-spectacular-sidecar
ships Redoc as static files; this page uses them with no web fonts and no inline script.
"""

from __future__ import annotations

from drf_spectacular.views import SpectacularRedocView

from comms.security import DEFAULT_CSP

# Redoc runs its search index in a web worker it builds from a blob: URL; only this page allows that
# (CSP Level 3 worker-src), every other directive stays as strict as DEFAULT_CSP.
API_DOCS_CSP = DEFAULT_CSP + "; worker-src 'self' blob:"


class ApiDocsView(SpectacularRedocView):
    """/api/docs/: Redoc served from our static files (drf-spectacular-sidecar), not from a CDN."""

    template_name = "comms/api_docs.html"

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = API_DOCS_CSP
        return response

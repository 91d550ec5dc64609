"""HTTP hardening shared by every page and endpoint: input guard and security headers.

* ``ApiInputGuard``: a NUL character in a URL or query string can never be stored (PostgreSQL text
  refuses it); answer a typed 400 instead of letting it reach a query and become a 500.
* ``SecurityHeaders``: Content-Security-Policy on every HTML page, plus Referrer-Policy,
  Permissions-Policy and Cross-Origin-Opener-Policy everywhere. A view can loosen its own CSP with
  ``@csp_override("...")`` (e.g. a page that must embed a rendered email preview).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from comms import errors

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "font-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)


class ApiInputGuard:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any("\x00" in k or any("\x00" in v for v in vs)
                                          for k, vs in request.GET.lists()):
            err = errors.ValidationFailed("The URL contains a NUL character.")
            return JsonResponse(err.as_dict(), status=err.status)
        return self.get_response(request)


def csp_override(policy: str) -> Callable:
    """Give one view its own Content-Security-Policy."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = policy
            return response

        return wrapped

    return decorate


class SecurityHeaders:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", getattr(settings, "COMMS_CSP", None) or DEFAULT_CSP)
        response.setdefault("Referrer-Policy", "same-origin")
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response

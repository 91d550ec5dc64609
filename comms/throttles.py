"""Rate limits for public endpoints and lockout of credential guessing, shared by every app.

Public pages (unsubscribe, preference center, click/open tracking, inbound provider webhooks, the
inbox) are reachable without an API key, so each gets a budget per client address and scope:

* DRF views: ``throttle_classes = [public_throttle("webhooks")]``.
* Plain Django views: ``@public_rate_limit("click")``.

Budgets come from COMMS_PUBLIC_RATE (default for every scope) and COMMS_PUBLIC_RATES (per scope,
e.g. ``{"webhooks": "6000/min"}``). Counting is a fixed window in Redis shared by every process; a
Redis outage lets requests through rather than taking the pages down.

Credential guessing: every failed API key or token check counts against the client address
(``auth_failed``); past COMMS_AUTH_FAILURE_LIMIT failures in COMMS_AUTH_LOCKOUT_SECONDS the address
is refused with 429 (``auth_locked``), whatever it sends, and the lockout is logged once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import throttling

from comms import errors
from comms.auth import RedisWindowThrottle
from comms.redis import rate_window, redis_client

log = logging.getLogger("comms.security")


def client_ident(request: HttpRequest) -> str:
    """The client address (X-Forwarded-For is trusted only for NUM_PROXIES hops, as DRF does)."""
    return throttling.BaseThrottle().get_ident(request)


def scope_rate(scope: str) -> str:
    return settings.COMMS_PUBLIC_RATES.get(scope) or settings.COMMS_PUBLIC_RATE


class PublicThrottle(RedisWindowThrottle):
    """Per client address and scope; subclasses (see ``public_throttle``) set ``scope``."""

    scope = "public"

    def rate(self) -> str:
        return scope_rate(self.scope)

    def ident_for(self, request) -> str:
        return f"public:{self.scope}:{client_ident(request)}"


def public_throttle(scope: str) -> type[PublicThrottle]:
    return type(f"PublicThrottle_{scope}", (PublicThrottle,), {"scope": scope})


def _too_many(request: HttpRequest, wait: float, message: str = "") -> HttpResponse:
    err = errors.RateLimited(message or None, details={"retry_after_seconds": max(1, int(wait))})
    if request.path.startswith(("/api/", "/webhooks/")) or "json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse(err.as_dict(), status=429)
    else:
        response = HttpResponse("Too many requests. Please try again in a minute.", status=429,
                                content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(max(1, int(wait)))
    return response


def public_rate_limit(scope: str) -> Callable:
    """Decorator for plain Django views: 429 (JSON or text) with Retry-After past the budget."""
    throttle_class = public_throttle(scope)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            throttle = throttle_class()
            if not throttle.allow_request(request, None):
                return _too_many(request, throttle.wait())
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


# --- credential guessing ---------------------------------------------------------------------------
def _fail_key(ident: str) -> str:
    window = int(time.time() // settings.COMMS_AUTH_LOCKOUT_SECONDS)
    return f"comms:authfail:{ident}:{window}"


def auth_locked(request: HttpRequest, *, also: Callable | None = None) -> list:
    """Raise RateLimited when this client address is locked out for guessing credentials.

    ``also(pipeline)`` may queue more Redis commands to run in the same round trip; their results
    are returned (an empty list when Redis is down).
    """
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(_fail_key(client_ident(request)))
        if also is not None:
            also(pipe)
        found, *results = pipe.execute()
        used = int(found or 0)
    except Exception:  # Redis down: authentication still works, only the lockout is off
        return []
    if used >= settings.COMMS_AUTH_FAILURE_LIMIT:
        window = settings.COMMS_AUTH_LOCKOUT_SECONDS
        wait = window - time.time() % window
        raise errors.RateLimited("Too many failed authentication attempts from this address.",
                                 details={"retry_after_seconds": max(1, int(wait))})
    return results


def auth_failed(request: HttpRequest, *, kind: str) -> None:
    """Count one failed credential check; log (once per window) when the address gets locked out."""
    ident = client_ident(request)
    try:
        used = rate_window(f"comms:authfail:{ident}", seconds=settings.COMMS_AUTH_LOCKOUT_SECONDS).hit()
    except Exception:
        return
    if used == settings.COMMS_AUTH_FAILURE_LIMIT:
        log.warning("lockout: %d failed %s checks from %s; refusing it for up to %d s",
                    used, kind, ident, settings.COMMS_AUTH_LOCKOUT_SECONDS)


def retry_after(exc: errors.CommsError) -> float:
    return float(exc.details.get("retry_after_seconds", 1))


def locked_out_response(request: HttpRequest, exc: errors.CommsError) -> HttpResponse:
    """The 429 (+ Retry-After) a plain Django view answers for ``auth_locked``'s refusal."""
    return _too_many(request, retry_after(exc), exc.message)

"""API authentication: service API keys (Bearer tokens) carrying a tenant and scopes."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, permissions, throttling
from rest_framework.request import Request

from comms import errors
from comms.models import ApiKey, Tenant
from comms.redis import RateWindow, parse_rate, rate_window

KEY_PREFIX = "ck_"
_CACHE_SECONDS = 30.0  # a revoked key stops working within this many seconds on every process
_CACHE_MAX = 10_000  # garbage keys are cached as misses too; never let them grow memory without bound
_cache: dict[str, tuple[float, ApiKey | None]] = {}
_cache_lock = threading.Lock()


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


_DUMMY_HASH = hash_key("ck_unknown_prefix")


def split_key(raw: str) -> str | None:
    """Return the lookup prefix of a well-formed key ``ck_<prefix>_<secret>``, else None."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX):].partition("_")
    return prefix if sep and prefix and secret else None


@dataclass(frozen=True)
class ServicePrincipal:
    """What `request.user` is for API calls: the calling service, not a human."""

    api_key: ApiKey

    @property
    def tenant(self) -> Tenant:
        return self.api_key.tenant

    is_authenticated = True
    is_staff = False

    def has_scope(self, scope: str) -> bool:
        return self.api_key.has_scope(scope)


_MISS = object()


def _cached(prefix: str) -> ApiKey | None | object:
    """The cached lookup of `prefix` (a key or None), or _MISS when it would take a query."""
    with _cache_lock:
        hit = _cache.get(prefix)
    return hit[1] if hit and hit[0] > time.monotonic() else _MISS


def _lookup(prefix: str) -> ApiKey | None:
    now = time.monotonic()
    hit = _cached(prefix)
    if hit is not _MISS:
        return hit
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix, revoked_at__isnull=True).first()
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[prefix] = (now + _CACHE_SECONDS, key)
    return key


def forget_cached_key(prefix: str) -> None:
    with _cache_lock:
        _cache.pop(prefix, None)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer ck_…`. Unknown, malformed and revoked keys all get the same 401."""

    def authenticate(self, request: Request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, raw = header.partition(" ")
        if not header:
            return None
        if scheme.lower() != "bearer" or not raw:
            raise errors.Unauthenticated("Use 'Authorization: Bearer <api key>'.")
        from comms.throttles import auth_failed, auth_locked

        raw = raw.strip()
        prefix = split_key(raw)
        key = _cached(prefix) if prefix else None
        lock_checked = key is _MISS
        if lock_checked:
            auth_locked(request)  # an address that keeps guessing keys is refused before any query
            key = _lookup(prefix)
        # The stored value is a SHA-256 of the whole key, compared in constant time; an unknown
        # prefix still costs the same hash, so timing does not reveal which prefixes exist.
        if key is None:
            hmac.compare_digest(_DUMMY_HASH, hash_key(raw))
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(raw)):
            if not lock_checked:
                auth_locked(request)  # a locked-out address learns nothing, not even that it guessed wrong
            auth_failed(request, kind="API key")
            raise errors.Unauthenticated("The API key is not valid.")
        if not lock_checked:
            # A locked-out address is refused even with the right key. The lockout check and the key's
            # request budget share one Redis round trip (they were two on every API call).
            counter = _key_counter(request, key)
            counted = auth_locked(request, also=counter.queue if counter else None)
            if counter and counted:
                request._comms_key_count = (counter.name, counted[0])
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            # Coarse on purpose: a write per request would cost more than the request itself.
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return ServicePrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="comms"'


class HasScope(permissions.BasePermission):
    """Views declare ``required_scopes = {"GET": "messages:read", "POST": "messages:send"}``."""

    def has_permission(self, request: Request, view) -> bool:
        principal = request.user
        if not isinstance(principal, ServicePrincipal):
            raise errors.Unauthenticated()
        if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
            return True  # let the view answer 405 instead of a misleading 403
        scopes = getattr(view, "required_scopes", {})
        scope = scopes.get(request.method) or scopes.get("*") or "admin"
        if not principal.has_scope(scope):
            raise errors.Forbidden(f"This API key lacks the '{scope}' scope.", details={"required_scope": scope})
        return True


def _key_counter(request: Request, key: ApiKey) -> RateWindow | None:
    """The key's budget window when the view is throttled per key, so authentication can count it."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is None or ApiKeyRateThrottle not in getattr(view, "throttle_classes", ()):
        return None
    return ApiKeyRateThrottle().counter(key.prefix)


class RedisWindowThrottle(throttling.BaseThrottle):
    """A fixed-window request budget in Redis (the kernel's one RateWindow, comms/redis.py), shared by
    every process. Subclasses give the rate and the identity."""

    def rate(self) -> str:  # pragma: no cover - contract
        raise NotImplementedError

    def ident_for(self, request: Request) -> str:  # pragma: no cover - contract
        raise NotImplementedError

    def counter(self, ident: str) -> RateWindow:
        limit, seconds = parse_rate(self.rate())
        return rate_window(f"comms:throttle:{ident}", seconds=seconds, limit=limit)

    def allow_request(self, request: Request, view) -> bool:
        counter = self.counter(self.ident_for(request))
        self._wait = counter.wait
        counted = getattr(request, "_comms_key_count", None)  # already counted with the lockout check
        if counted and counted[0] == counter.name:
            return counted[1] <= counter.limit
        try:
            used = counter.hit()
        except Exception:  # a Redis outage must not take the API down with it
            return True
        return used <= counter.limit

    def wait(self) -> float:
        return getattr(self, "_wait", 0.0)


class ApiKeyRateThrottle(RedisWindowThrottle):
    """Per API key (COMMS_API_RATE, e.g. "60000/min")."""

    def rate(self) -> str:
        from django.conf import settings

        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]

    def ident_for(self, request: Request) -> str:
        principal = request.user
        return principal.api_key.prefix if isinstance(principal, ServicePrincipal) else self.get_ident(request)

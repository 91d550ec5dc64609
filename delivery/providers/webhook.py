"""Outbound webhooks: an HTTPS POST signed per the Standard Webhooks spec.

Headers (standardwebhooks.com): ``webhook-id`` (the message id, stable across retries so the
subscriber can deduplicate), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; two space-separated signatures while a rotated
secret is still valid). Every hop, redirects included, goes through comms.netsafe. 2xx is sent;
410 Gone disables the endpoint (permanent); anything else is retried.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings
from standardwebhooks import Webhook

from comms import errors, jsonlimits
from comms.enums import Channel
from comms.netsafe import resolve_safe
from delivery.models import WebhookEndpoint
from delivery.providers.base import Content, Provider, SendResult

MAX_REDIRECTS = 3


def sign(*, secrets: list[str], message_id: str, when: datetime, body: str) -> str:
    return " ".join(Webhook(secret).sign(message_id, when, body) for secret in secrets)


_pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
_pools_lock = threading.Lock()
_POOLS_MAX = 256


def _pool(scheme: str, host: str, port: int, ip: str) -> urllib3.HTTPConnectionPool:
    """A connection pool to one checked address, kept for the next message (and shared by the sending
    threads). The key is the address resolve_safe approved for this hop, so reuse never skips the
    SSRF check: every message resolves and checks again, and a name that now points elsewhere gets
    a pool of its own."""
    key = (scheme, host, port, ip)
    pool = _pools.get(key)
    if pool is not None:
        return pool
    timeout = urllib3.Timeout(connect=settings.COMMS_WEBHOOK_TIMEOUT, read=settings.COMMS_WEBHOOK_TIMEOUT)
    size = max(1, settings.COMMS_PROVIDER_CONCURRENCY)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(ip, port, timeout=timeout, retries=False, server_hostname=host,
                                           assert_hostname=host, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                                           maxsize=size)
    else:
        pool = urllib3.HTTPConnectionPool(ip, port, timeout=timeout, retries=False, maxsize=size)
    with _pools_lock:
        if len(_pools) >= _POOLS_MAX:  # many subscribers: forget the oldest pools
            for stale in list(_pools)[:_POOLS_MAX // 4]:
                _pools.pop(stale).close()
        pool = _pools.setdefault(key, pool)
    return pool


def close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
    """POST to the checked address itself (no second DNS lookup), keeping Host and TLS name."""
    host, port, ip = resolve_safe(url)
    parts = urlsplit(url)
    pool = _pool(parts.scheme, host, port, ip)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return pool.urlopen("POST", path, body=body, headers={**headers, "Host": parts.netloc},
                        redirect=False, retries=False)


class WebhookProvider(Provider):
    name = "webhook"
    channel = Channel.WEBHOOK

    def prepare(self, message: Any, content: Content) -> dict:
        """On the engine's thread: the endpoint and its signing secrets (database reads)."""
        endpoint = WebhookEndpoint.objects.filter(tenant_id=message.tenant_id, url=message.recipient_address).first()
        now = datetime.now(timezone.utc)
        secrets = endpoint.secrets(now) if endpoint is not None and endpoint.disabled_at is None else []
        return {"endpoint": endpoint, "secrets": secrets, "gone": False}

    def send(self, message: Any, content: Content) -> SendResult:
        prepared = self.prepare(message, content)
        result = self.send_prepared(message, content, prepared)
        self.settle(message, result, prepared)
        return result

    def settle(self, message: Any, result: SendResult, prepared: Any) -> None:
        """On the engine's thread: a 410 Gone disables the endpoint (a database write)."""
        if prepared and prepared["gone"]:
            from delivery.services.webhooks import endpoint_disable

            endpoint_disable(endpoint=prepared["endpoint"], reason="410 Gone from the subscriber")

    def send_prepared(self, message: Any, content: Content, prepared: Any) -> SendResult:
        endpoint = prepared["endpoint"]
        if endpoint is None or endpoint.disabled_at is not None:
            return SendResult.permanent(errors.WebhookUnverified.code,
                                        "no active endpoint" if endpoint is None else f"endpoint disabled: "
                                        f"{endpoint.disabled_reason}")
        body = content.body
        now = datetime.now(timezone.utc)
        headers = {
            "webhook-id": str(message.id), "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(secrets=prepared["secrets"], message_id=str(message.id), when=now, body=body),
            "Content-Type": "application/json" if _is_json(body) else "text/plain; charset=utf-8",
            "User-Agent": "comms-webhooks/1.0",
        }
        url = endpoint.url
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                response = _post(url, body.encode(), headers)
                if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                break
            else:
                return SendResult.transient("redirects", f"more than {MAX_REDIRECTS} redirects")
        except errors.UnsafeDestination as exc:
            return SendResult.permanent(exc.code, exc.message)
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
            return SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        except urllib3.exceptions.HTTPError as exc:  # the request may have reached the subscriber
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        if 200 <= response.status < 300:
            return SendResult.sent(response.headers.get("webhook-id", str(message.id)), detail=str(response.status))
        if response.status == 410:
            prepared["gone"] = True
            return SendResult.permanent("410", "endpoint answered 410 Gone; disabled")
        return SendResult.transient(str(response.status), response.data[:500].decode(errors="replace"))


def _is_json(text: str) -> bool:
    """Content-Type only: a body nested past COMMS_JSON_MAX_DEPTH goes as text (json.loads would
    recurse until RecursionError, which failed every attempt of the send)."""
    try:
        jsonlimits.loads(text)
    except (ValueError, errors.JsonTooDeep):
        return False
    return True

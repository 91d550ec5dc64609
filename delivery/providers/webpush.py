"""Web Push to browser subscriptions (RFC 8030 delivery, RFC 8291 aes128gcm, RFC 8292 VAPID) with pywebpush.

Wire format only: which subscriptions a push goes to and what a dead one means are the push channel's
(``delivery.channels.push``). Per subscription: one POST of the encrypted payload to its endpoint with
``TTL``, ``Urgency`` and ``Topic`` (RFC 8030 sections 5.2-5.4) and ``Authorization: vapid t=…,k=…``
(RFC 8292 section 3). Answers (RFC 8030 section 5, and the push services' docs: Mozilla autopush,
FCM's Web Push endpoint, Apple's web push):

* ``201 Created`` (``Location``: the push message resource) — sent;
* ``404``/``410`` — the subscription expired or was unsubscribed: pruned (``dead_addresses``);
* ``429`` and ``5xx``, connection errors — transient (retried; a timeout after the request was
  written is ``maybe_accepted``);
* ``400``/``401``/``403`` (malformed request, VAPID refused: a subscription made with another
  application server key answers 403) and ``413`` (payload too large) — permanent for that subscription.

Endpoints are URLs our customers' browsers hand us, so every request goes through ``comms.netsafe``
like the webhook channel: the host is resolved and checked on every send and the connection is made
to the checked address (no DNS rebinding between check and connect).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
from django.conf import settings
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from requests.adapters import HTTPAdapter

from comms import errors
from comms import webpush as kernel_webpush
from comms.enums import Channel
from comms.netsafe import resolve_safe
from delivery.channels import push
from delivery.providers.base import Content, Provider, SendResult

# RFC 8030 section 5.3: very-low | low | normal | high. P0/P1 wake the device at once.
URGENCY = {0: "high", 1: "high", 2: "normal", 3: "low", 4: "very-low"}
MAX_TTL = 28 * 24 * 3600  # Chrome and Firefox keep a message at most 4 weeks
# RFC 8291 section 4: the push service must accept 4096 octets of ciphertext; aes128gcm adds a
# 86-byte header, 16-byte tag and 1 padding delimiter.
MAX_PLAINTEXT = 4096 - 86 - 16 - 1
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_JWT_SECONDS = 12 * 3600  # RFC 8292 section 2: exp at most 24 h ahead; re-signed with 1 h to spare


def topic(collapse_key: str) -> str:
    """RFC 8030 section 5.4: at most 32 characters of the base64url alphabet. A key that is not is
    hashed (not trimmed: trimming would make two different keys replace each other)."""
    if _TOPIC.match(collapse_key):
        return collapse_key
    return kernel_webpush.b64url_encode(hashlib.sha256(collapse_key.encode()).digest())[:32]


class _PinnedAdapter(HTTPAdapter):
    """requests' transport, connecting to the address comms.netsafe approved for this request's host
    (TLS still checks the certificate against the host name), as the webhook channel does."""

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host, port, ip = resolve_safe(request.url)
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        pool_kwargs = {"server_hostname": host, "assert_hostname": host, "cert_reqs": "CERT_REQUIRED",
                       "ca_certs": verify if isinstance(verify, str) else certifi.where()}
        return self.poolmanager.connection_from_host(ip, port, scheme=parts.scheme, pool_kwargs=pool_kwargs)


class WebPushProvider(Provider):
    name = "webpush"
    channel = Channel.PUSH

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_WEBPUSH, **(config or {})})
        self._vapid: Vapid | None = None
        self._jwt: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        try:
            kernel_webpush.vapid_private_key()
        except errors.CommsError as exc:
            return [exc.message]
        except ValueError as exc:
            return [f"the VAPID private key cannot be decrypted ({exc})"]
        subject = {**settings.COMMS_WEBPUSH, **config}.get("subject", "")
        if not str(subject).startswith(("mailto:", "https://")):
            return ["WEBPUSH_VAPID_SUBJECT must be a mailto: or https: URL (RFC 8292 section 2.1)"]
        return []

    # -- session and VAPID ----------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        """One session (connection pools per checked address) per sending thread."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # endpoints are customer-supplied: no proxy or netrc from the environment
            session.max_redirects = 0  # push services answer, they do not redirect (RFC 8030 section 5)
            adapter = _PinnedAdapter(pool_connections=16, pool_maxsize=4, max_retries=0)
            session.mount("https://", adapter)
            if self.config.get("ca_bundle"):
                session.verify = self.config["ca_bundle"]
            self._local.session = session
        return session

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        """The VAPID Authorization for the endpoint's origin (RFC 8292 section 2: aud is the origin), signed
        once per origin every 11 h instead of once per push (an ECDSA signature each)."""
        parts = urlsplit(endpoint)
        aud = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        held = self._jwt.get(aud)
        if held and held[0] - 3600 > now:
            return held[1]
        with self._lock:
            if self._vapid is None:
                self._vapid = Vapid.from_string(private_key=kernel_webpush.vapid_private_key())
            exp = int(now) + _JWT_SECONDS
            headers = self._vapid.sign({"aud": aud, "exp": exp, "sub": self.config["subject"]})
            self._jwt[aud] = (exp, headers)
        return headers

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None

    def release(self) -> None:
        """Keep sessions and signed tokens for the next batch."""

    # -- build ----------------------------------------------------------------------------------------------
    def payload(self, message: Any, content: Content) -> bytes:
        """What the service worker receives (comms/static/comms/webpush/sw.js shows it)."""
        meta = message.metadata or {}
        body = {
            "title": str(content.data.get("title") or content.subject or ""),
            "body": str(content.data.get("body") or content.body),
            "data": {**(meta.get("data") or {}), **(content.data.get("data") or {})},
            "tag": str(meta.get("collapse_key") or ""),
            "url": meta.get("link") if str(meta.get("link") or "").startswith("https://") else "",
            "icon": meta.get("image") or "",
            "message_id": str(message.id),
        }
        return json.dumps({k: v for k, v in body.items() if v not in ("", {}, None)},
                          separators=(",", ":")).encode()

    def headers(self, message: Any) -> tuple[int, dict[str, str]]:
        """(TTL, Urgency/Topic headers) from the message's priority and collapse key."""
        meta = message.metadata or {}
        priority = int(message.priority)
        ttl = meta.get("ttl")
        if ttl is None:  # no point keeping a message past the age at which we would stop retrying it
            ttl = settings.COMMS_PRIORITIES.get(priority, {}).get("max_age", 24 * 3600)
        headers = {"Urgency": URGENCY.get(priority, "normal")}
        if meta.get("collapse_key"):
            headers["Topic"] = topic(str(meta["collapse_key"]))
        return max(0, min(int(ttl), MAX_TTL)), headers

    # -- send -----------------------------------------------------------------------------------------------
    def prepare(self, message: Any, content: Content) -> dict:
        """On the engine's thread: the subscriptions (their keys decrypted) to reach."""
        rows, none = push.vendor_targets(message, vendor="webpush", fields=("keys_encrypted",))
        targets = []
        for endpoint, _platform, device_id, keys in rows:
            try:
                targets.append((endpoint, device_id, kernel_webpush.keys_decrypt(keys)))
            except ValueError:
                targets.append((endpoint, device_id, None))
        return {"targets": targets, "none": none}

    def send(self, message: Any, content: Content) -> SendResult:
        return self.send_prepared(message, content, self.prepare(message, content))

    def send_prepared(self, message: Any, content: Content, prepared: Any) -> SendResult:
        targets = prepared["targets"]
        if not targets:
            return prepared["none"]
        data = self.payload(message, content)
        if len(data) > MAX_PLAINTEXT:
            return SendResult.permanent("payload_too_large",
                                        f"the push payload is {len(data)} bytes; Web Push carries {MAX_PLAINTEXT}")
        ttl, extra = self.headers(message)
        devices, dead, retry = [], [], []
        for endpoint, device_id, keys in targets:
            entry = {"device": device_id, "platform": "webpush", "token": endpoint[-24:]}
            outcome, code, ref, maybe, detail = self._one(endpoint, keys, data, ttl, extra)
            devices.append({**entry, "outcome": outcome, "code": code, "ref": ref, "maybe_accepted": maybe,
                            "detail": detail[:200]})
            if outcome == "pruned":
                dead.append((endpoint, code))
            elif outcome == "transient":
                retry.append(endpoint)
        result = dataclasses.replace(_summarise(devices), dead_addresses=tuple(dead))
        return dataclasses.replace(result, retry_addresses=tuple(retry)) if result.ok and retry else result

    def _one(self, endpoint: str, keys: dict | None, data: bytes, ttl: int,
             extra: dict[str, str]) -> tuple[str, str, str, bool, str]:
        """(outcome, code, ref, maybe_accepted, detail) of one POST."""
        if not keys:
            return "permanent", "keys_unreadable", "", False, "the subscription keys cannot be decrypted"
        if not endpoint.startswith("https://"):  # registration refuses these; a row written otherwise is not sent
            return "permanent", "COMMS_INVALID_SUBSCRIPTION", "", False, "the endpoint is not an https URL"
        try:
            response = webpush({"endpoint": endpoint, "keys": keys}, data=data.decode(),
                               headers={**extra, **self._vapid_headers(endpoint)}, ttl=ttl,
                               timeout=float(self.config.get("timeout") or 10.0),
                               requests_session=self._session())
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else 0
            detail = f"{status} {(exc.response.text if exc.response is not None else str(exc))[:150]}"
            if status in (404, 410):
                return "pruned", str(status), "", False, detail
            if status == 429 or status >= 500:
                return "transient", str(status), "", False, detail
            return "permanent", str(status or "webpush_error"), "", False, detail
        except errors.UnsafeDestination as exc:
            return "permanent", exc.code, "", False, exc.message
        except requests.exceptions.TooManyRedirects as exc:
            return "permanent", "redirect", "", False, str(exc)
        except requests.exceptions.ConnectTimeout as exc:
            return "transient", "timeout", "", False, str(exc)
        except requests.exceptions.Timeout as exc:  # the request may have been read: retry here, no failover
            return "transient", "timeout", "", True, str(exc)
        except requests.exceptions.RequestException as exc:
            return "transient", "connect", "", False, str(exc)
        ref = response.headers.get("Location") or f"{response.status_code} {endpoint[-40:]}"
        return "sent", "", ref[:255], False, f"{response.status_code}"


def _summarise(devices: list[dict]) -> SendResult:
    sent = [d for d in devices if d["outcome"] == "sent"]
    transient = [d for d in devices if d["outcome"] == "transient"]
    counts = {k: sum(1 for d in devices if d["outcome"] == k) for k in ("sent", "pruned", "transient", "permanent")}
    detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v) + f" of {len(devices)} subscription(s)"
    data = {"devices": devices}
    if sent:
        return SendResult(ok=True, provider_ref=sent[0]["ref"], detail=detail, data=data)
    if transient:
        return SendResult(ok=False, error_class="transient", code=transient[0]["code"], detail=detail,
                          maybe_accepted=any(d["maybe_accepted"] for d in transient), data=data)
    return SendResult(ok=False, error_class="permanent", code=devices[0]["code"], detail=detail, data=data)

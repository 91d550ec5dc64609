"""Push through Firebase Cloud Messaging (HTTP v1) with firebase-admin: Android, iOS (APNs via FCM), web.

A message to a directory recipient fans out to every active ``comms.Device`` of theirs (one FCM
request per token, sent concurrently through a thread pool the provider keeps); a message whose address is a raw
token goes to that token only. Each device gets only its platform's block: Android (collapse key,
priority, TTL), APNs (``apns-collapse-id``, ``thread-id``, badge/sound) or Web Push (Urgency, Topic,
click link). Options come from the message metadata: ``collapse_key``, ``thread_id``, ``link``,
``image``, ``badge``, ``sound``, ``ttl`` (seconds) and ``data`` (string map for the app).

Per-device outcomes are kept in the delivery log. Tokens FCM reports dead (UNREGISTERED,
SENDER_ID_MISMATCH, INVALID_ARGUMENT about the token) are reported as ``dead_addresses``; the push
channel (delivery.channels.push) disables those devices, so later sends skip them until the app
registers them again. Which devices a message goes to is the push channel's too. The message is sent when any device took
it, and the devices that answered 429/5xx/network get a follow-up message later (one per device);
when none took it, such an answer makes the message transient (retried on the devices that are
still active), and only all-dead or a bad payload is permanent.

Config (ChannelProvider options + credentials, or settings ``COMMS_FCM``): ``service_account``
(the JSON credential, as a dict or string) or ``service_account_file``; ``project_id`` (default:
the credential's); ``endpoint`` (base URL of the FCM API, for the loopback stand-in); ``timeout``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
import requests
from django.conf import settings
from firebase_admin import _http_client, credentials, exceptions, messaging

from comms.enums import Channel
from delivery.channels import push
from delivery.providers.base import Content, Provider, SendResult

log = logging.getLogger(__name__)
_PRUNE = {"UNREGISTERED", "SENDER_ID_MISMATCH", "INVALID_TOKEN"}
_app_lock = threading.Lock()
_app_serial = [0]


def load_service_account(config: dict[str, Any]) -> dict | None:
    """The service-account credential from config: a dict, a JSON string or a file path."""
    raw = config.get("service_account")
    if isinstance(raw, str) and raw.strip():
        raw = json.loads(raw)
    if isinstance(raw, dict) and raw:
        return raw
    path = config.get("service_account_file")
    if path:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    return None


def _fcm_code(exc: exceptions.FirebaseError) -> str:
    """FCM's own error code (UNREGISTERED, QUOTA_EXCEEDED, …), INVALID_TOKEN for a bad token, else gRPC's."""
    body: dict = {}
    response = exc.http_response
    if response is not None:
        try:
            body = response.json().get("error", {})
        except ValueError:
            body = {}
    fcm_code, token_field = "", False
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith("FcmError"):
            fcm_code = detail.get("errorCode", "")
        for violation in detail.get("fieldViolations", []):
            token_field = token_field or violation.get("field") == "message.token"
    code = fcm_code or exc.code or "UNKNOWN"
    if code == "INVALID_ARGUMENT" and (token_field or "registration token" in str(body.get("message", exc)).lower()):
        return "INVALID_TOKEN"
    return code


def classify(exc: exceptions.FirebaseError) -> tuple[str, str, bool]:
    """(outcome, code, maybe_accepted) for one device: outcome is pruned / permanent / transient."""
    code = _fcm_code(exc)
    if code in _PRUNE:
        return "pruned", code, False
    status = exc.http_response.status_code if exc.http_response is not None else None
    if status is None:
        cause = exc.cause
        refused = isinstance(cause, requests.exceptions.ConnectionError) and (
            isinstance(cause, requests.exceptions.ConnectTimeout) or "NewConnectionError" in repr(cause))
        return "transient", "connect" if refused else "network", not refused
    if status == 429 or status >= 500:
        return "transient", str(status), False
    if status in (401, 403):  # our credential, or the APNs/web push key behind FCM: retry, count against us
        return "transient", str(status), False
    return "permanent", code, False


class FcmProvider(Provider):
    name = "fcm"
    channel = Channel.PUSH

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_FCM, **(config or {})})
        self._app: firebase_admin.App | None = None
        self._token_lock = threading.Lock()
        self._init_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_FCM, **config}
        try:
            info = load_service_account(c)
        except (OSError, ValueError) as exc:
            return [f"the service account cannot be read: {exc}"]
        if not info:
            return ["a service account (service_account / FCM_SERVICE_ACCOUNT_FILE) is missing"]
        missing = [k for k in ("private_key", "client_email", "token_uri") if not info.get(k)]
        if missing:
            return [f"the service account lacks {', '.join(missing)}"]
        if not (c.get("project_id") or info.get("project_id")):
            return ["project_id is missing"]
        return []

    def app(self) -> firebase_admin.App:
        """One firebase_admin App per provider instance, pointed at the configured endpoint (made once,
        though many sending threads may ask at the same time)."""
        if self._app is not None:
            return self._app
        with self._init_lock:
            if self._app is None:
                self._app = self._make_app()
        return self._app

    def _make_app(self) -> firebase_admin.App:
        info = load_service_account(self.config)
        if not info:
            raise ValueError("FCM needs a service_account (or service_account_file)")
        timeout = float(self.config.get("timeout") or 10)
        with _app_lock:
            _app_serial[0] += 1
            name = f"comms-{self.config.get('provider_name', 'fcm')}-{_app_serial[0]}"
        app = firebase_admin.initialize_app(credentials.Certificate(info), name=name, options={
            "projectId": self.config.get("project_id") or info.get("project_id"), "httpTimeout": timeout})
        service = messaging._get_messaging_service(app)
        # firebase-admin 7.1 has no public setting for the FCM host: the URL is built from
        # _MessagingService.FCM_URL in the service's constructor, so a non-default endpoint (the
        # loopback stand-in, a regional proxy) replaces that per-app attribute. Its HTTP client
        # retries 500/503 four times with backoff inside one send; the engine retries and fails
        # over itself, so the client here makes exactly one attempt.
        if self.config.get("endpoint"):
            service._fcm_url = f"{self.config['endpoint'].rstrip('/')}/v1/projects/{app.project_id}/messages:send"
        service._client = _http_client.JsonHttpClient(credential=service._credential, timeout=timeout, retries=False)
        # One connection pool for every send of this provider in flight at once (the engine's sending
        # threads and the fan-out pool); requests' default keeps only 10 and reconnects past that.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=self._fanout_size(), max_retries=0)
        session = service._client.session
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _environment_once(session, service._fcm_url)
        return app

    def _ensure_token(self, app: firebase_admin.App) -> None:
        """Refresh the access token once, before a fan-out sends its requests side by side (each
        would otherwise see an expired token and run its own OAuth exchange)."""
        credential = app.credential.get_credential()
        if credential.valid:
            return
        with self._token_lock:
            if not credential.valid:
                try:
                    credential.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise exceptions.UnauthenticatedError(str(exc), cause=exc) from exc

    def release(self) -> None:
        """Keep the app (its access token and connection pool) for the next batch."""

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._app is not None:
            try:
                firebase_admin.delete_app(self._app)
            except Exception:  # closing must never fail a batch
                log.debug("closing FCM app failed", exc_info=True)
            self._app = None

    # -- build ----------------------------------------------------------------------------------------
    def build(self, message: Any, content: Content, *, token: str, platform: str) -> messaging.Message:
        meta = message.metadata or {}
        data = {str(k): str(v) for k, v in {**(meta.get("data") or {}), **(content.data.get("data") or {})}.items()}
        data["comms_message_id"] = str(message.id)
        title = str(content.data.get("title") or content.subject or "")
        body = str(content.data.get("body") or content.body)
        urgent = int(message.priority) <= 1
        collapse = meta.get("collapse_key") or None
        ttl = int(meta["ttl"]) if meta.get("ttl") is not None else None
        link = meta.get("link") or ""
        kwargs: dict[str, Any] = {"token": token, "data": data,
                                  "notification": messaging.Notification(title=title or None, body=body or None,
                                                                         image=meta.get("image") or None)}
        if platform == "android":
            kwargs["android"] = messaging.AndroidConfig(
                collapse_key=collapse, priority="high" if urgent else "normal",
                ttl=timedelta(seconds=ttl) if ttl is not None else None,
                notification=messaging.AndroidNotification(tag=collapse, sound=meta.get("sound") or None,
                                                           click_action=meta.get("click_action") or None))
        elif platform == "ios":
            headers = {"apns-priority": "10" if urgent else "5", "apns-push-type": "alert"}
            if collapse:
                headers["apns-collapse-id"] = str(collapse)[:64]  # APNs caps the id at 64 bytes
            if ttl is not None:
                headers["apns-expiration"] = str(int(message.created_at.timestamp()) + ttl)
            kwargs["apns"] = messaging.APNSConfig(headers=headers, payload=messaging.APNSPayload(aps=messaging.Aps(
                thread_id=meta.get("thread_id") or None, badge=meta.get("badge"), sound=meta.get("sound") or None,
                mutable_content=bool(meta.get("image")) or None)))
        elif platform == "web":
            headers = {"Urgency": "high" if urgent else "normal"}
            if collapse:
                headers["Topic"] = "".join(c for c in str(collapse) if c.isalnum() or c in "-_")[:32]
            if ttl is not None:
                headers["TTL"] = str(ttl)
            kwargs["webpush"] = messaging.WebpushConfig(
                headers=headers, notification=messaging.WebpushNotification(tag=collapse),
                fcm_options=messaging.WebpushFCMOptions(link=link) if link.startswith("https://") else None)
        return messaging.Message(**kwargs)

    # -- send -----------------------------------------------------------------------------------------
    def _fanout_size(self) -> int:
        """Device requests in flight at once: enough for every send the engine may have in flight on
        this provider to reach two devices side by side."""
        return int(self.config.get("concurrency") or 2 * max(4, settings.COMMS_PROVIDER_CONCURRENCY))

    def prepare(self, message: Any, content: Content) -> dict:
        """On the engine's thread: the devices to reach (the push channel's database read)."""
        targets, none = push.vendor_targets(message, vendor="fcm")
        return {"targets": targets, "none": none}

    def send(self, message: Any, content: Content) -> SendResult:
        """A send outside the engine: the devices to reach, then the requests. Pruning the dead ones is
        the engine's channel step (delivery.channels.settle), not this vendor's."""
        return self.send_prepared(message, content, self.prepare(message, content))

    def send_prepared(self, message: Any, content: Content, prepared: Any) -> SendResult:
        targets = prepared["targets"]
        if not targets:
            return prepared.get("none") or SendResult.permanent("COMMS_NO_DEVICES", "the recipient has no active push device")
        try:
            built = [self.build(message, content, token=t, platform=p) for t, p, _ in targets]
        except (ValueError, TypeError) as exc:  # firebase-admin validates the payload locally
            return SendResult.permanent("invalid_payload", str(exc)[:500])
        try:
            app = self.app()
            if len(built) > 1:
                self._ensure_token(app)
            answers = self._send_all(app, built)
        except (google.auth.exceptions.GoogleAuthError, exceptions.UnauthenticatedError) as exc:
            return SendResult.transient("401", f"FCM access token: {exc}"[:500])  # nothing was sent
        devices, dead, retry = [], [], []
        for (token, platform, device_id), (name, error) in zip(targets, answers):
            entry = {"device": device_id, "platform": platform, "token": token[-12:]}
            if error is None:
                devices.append({**entry, "outcome": "sent", "ref": name})
                continue
            outcome, code, maybe = classify(error)
            devices.append({**entry, "outcome": outcome, "code": code, "maybe_accepted": maybe, "detail": str(error)[:200]})
            if outcome == "transient":
                retry.append(token)
            if outcome == "pruned":
                dead.append((token, code))
        result = dataclasses.replace(_summarise(devices), dead_addresses=tuple(dead))
        return dataclasses.replace(result, retry_addresses=tuple(retry)) if result.ok and retry else result

    def _send_all(self, app: firebase_admin.App, built: list[messaging.Message]) -> list[tuple[str | None, Any]]:
        """(FCM message name, None) or (None, FirebaseError) per device. One device is sent on this
        thread; a fan-out goes through a pool kept for the provider's life (firebase-admin's
        send_each would start and stop a thread per device for every message)."""
        def one(fcm_message: messaging.Message) -> tuple[str | None, Any]:
            try:
                return messaging.send(fcm_message, app=app), None
            except exceptions.FirebaseError as exc:
                return None, exc

        if len(built) == 1:
            return [one(built[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._fanout_size(),
                                            thread_name_prefix="fcm")
        return list(self._pool.map(one, built))


def _environment_once(session: requests.Session, url: str) -> None:
    """Read the proxy and CA-bundle environment once per app instead of on every request.

    With ``trust_env`` on (requests' default) every ``Session.request`` scans the whole process
    environment for *_proxy / no_proxy variables twice and looks for a ~/.netrc file: about a fifth
    of the CPU a push costs (bench/push_cpu.py). The values are taken here, once, from the same
    variables (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) requests would read, and the
    per-request lookup is switched off through requests' public ``Session`` attributes. A change to
    those variables takes effect with the next app (a worker restart), as for the credential. Netrc
    is not used: FCM authenticates with the OAuth bearer token google-auth sets on each request.
    """
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


def _summarise(devices: list[dict]) -> SendResult:
    sent = [d for d in devices if d["outcome"] == "sent"]
    transient = [d for d in devices if d["outcome"] == "transient"]
    counts = {k: sum(1 for d in devices if d["outcome"] == k) for k in ("sent", "pruned", "transient", "permanent")}
    detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v) + f" of {len(devices)} device(s)"
    data = {"devices": devices}
    if sent:
        return SendResult(ok=True, provider_ref=sent[0]["ref"][:255], detail=detail, data=data)
    if transient:
        return SendResult(ok=False, error_class="transient", code=transient[0]["code"], detail=detail,
                          maybe_accepted=any(d["maybe_accepted"] for d in transient), data=data)
    return SendResult(ok=False, error_class="permanent", code=devices[0]["code"], detail=detail, data=data)

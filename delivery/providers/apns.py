"""Push to iOS through Apple's APNs directly: token-based auth over HTTP/2 (httpx with h2).

Wire format (Apple, "Sending notification requests to APNs"): ``POST /3/device/<device token>`` on
``api.push.apple.com`` (``api.sandbox.push.apple.com`` for development builds) over HTTP/2, with
``authorization: bearer <JWT>``, ``apns-topic`` (the app's bundle id), ``apns-push-type`` (``alert``,
or ``background`` for a silent content-available push), ``apns-priority`` (10 now, 5 when
convenient; a background push must be 5), ``apns-expiration`` (UNIX seconds; 0 = try once) and
``apns-collapse-id`` (≤ 64 bytes); the body is JSON with an ``aps`` dictionary (alert title/body,
``thread-id``, ``badge``, ``sound``, ``content-available``) and the app's own keys beside it. A 200
carries ``apns-id``; an error carries ``{"reason": ...}`` (and a ``timestamp`` on 410).

Provider token (Apple, "Establishing a token-based connection to APNs"): an ES256 JWT whose header
names the key (``kid``) and whose claims are the team (``iss``) and the time it was made (``iat``).
APNs refuses a token older than an hour (403 ExpiredProviderToken) and one renewed more often than
every 20 minutes (429 TooManyProviderTokenUpdates), so the token is made once, shared by every
send of the provider, renewed after ``token_refresh_seconds`` (50 min), and renewed early only when
APNs calls it expired/invalid and it is at least 20 minutes old; the request is then tried once more.

Errors: 400 BadDeviceToken and 410 Unregistered/ExpiredToken are dead devices (reported as
``dead_addresses``; the push channel disables them); 429 and 5xx are transient; 403 (our key) is
transient and counts against the provider's health; any other reason is permanent.

One ``httpx.AsyncClient`` per provider instance, on an event loop thread the provider keeps: its
HTTP/2 connection multiplexes every send the engine has in flight (delivery.services.inflight) and
every device of a fan-out, so a burst shares one TLS handshake. Not the sync ``httpx.Client``:
shared by sending threads, its HTTP/2 connection hands two threads the same stream id or sends
HEADERS out of order (httpcore 1.0: the id is taken and the frame sent outside one lock; measured
here as GOAWAY PROTOCOL_ERROR under bench/mixed.py), while on one event loop those steps never
interleave.

Config (ChannelProvider options + credentials, or settings ``COMMS_APNS``): ``team_id``, ``key_id``,
``private_key`` (the .p8 PEM) or ``private_key_file``, ``topic``, ``endpoint``, ``ca_file`` (a CA
bundle to trust instead of the system's: the loopback stand-in), ``timeout``.
Message metadata: ``push_type`` (``background``), ``collapse_key``, ``thread_id``, ``badge``,
``sound``, ``ttl`` (seconds), ``data`` (the app's keys), ``topic`` (overrides the configured one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import ssl
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpx
import jwt
from django.conf import settings

from comms.enums import Channel
from delivery.channels import push
from delivery.providers.base import Content, Provider, SendResult

log = logging.getLogger(__name__)
_PRUNE = {"BadDeviceToken", "Unregistered", "ExpiredToken"}
_REFRESH = {"ExpiredProviderToken", "InvalidProviderToken"}
TOKEN_MIN_SECONDS = 20 * 60  # Apple: no more than one token update every 20 minutes


def load_private_key(config: dict[str, Any]) -> str:
    """The .p8 signing key (PEM) from ``private_key`` or ``private_key_file``; empty when neither."""
    if str(config.get("private_key") or "").strip():
        return str(config["private_key"])
    if config.get("private_key_file"):
        with open(config["private_key_file"], encoding="utf-8") as handle:
            return handle.read()
    return ""


class ApnsProvider(Provider):
    name = "apns"
    channel = Channel.PUSH

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_APNS, **(config or {})})
        self._client: httpx.AsyncClient | None = None  # made and used on the loop thread only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (JWT, when it was made)
        self.clock = time.time  # the JWT's clock (tests move it to cross the refresh and expiry bounds)
        self.tokens_made = 0

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_APNS, **config}
        missing = [k for k in ("team_id", "key_id", "topic") if not c.get(k)]
        try:
            key = load_private_key(c)
        except OSError as exc:
            return [f"the signing key cannot be read: {exc}"]
        if not key:
            missing.append("private_key")
        if missing:
            return [f"APNs needs {', '.join(missing)}"]
        try:
            jwt.encode({"iss": c["team_id"], "iat": 0}, key, algorithm="ES256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            return [f"the signing key is not an ES256 (P-256) private key: {exc}"]
        return []

    # -- session ----------------------------------------------------------------------------------------
    def loop(self) -> asyncio.AbstractEventLoop:
        """The provider's event loop thread, started once however many sending threads ask at once."""
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    threading.Thread(target=loop.run_forever, name=f"apns-{id(self):x}", daemon=True).start()
                    self._loop = loop
        return self._loop

    def _async_client(self) -> httpx.AsyncClient:
        """The HTTP/2 client (on the loop thread, so no lock: the loop runs one step at a time)."""
        if self._client is None:
            verify: Any = True
            if self.config.get("ca_file"):
                verify = ssl.create_default_context(cafile=self.config["ca_file"])
            self._client = httpx.AsyncClient(
                http2=True, verify=verify, timeout=self._timeout(),
                base_url=str(self.config.get("endpoint") or "https://api.push.apple.com").rstrip("/"))
        return self._client

    def _timeout(self) -> float:
        return float(self.config.get("timeout") or 10)

    def release(self) -> None:
        """Keep the connection and the token for the next batch."""

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        client, self._client = self._client, None
        if client is not None:
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(5)
            except Exception:  # closing must never fail a batch
                log.debug("closing the APNs client failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)

    def provider_token(self, *, rejected: str | None = None) -> str:
        """The shared JWT: reused until ``token_refresh_seconds`` old; renewed early only when APNs
        rejected exactly this token and it is old enough for Apple to accept an update."""
        # Renewed within APNs' hour, and never more often than Apple accepts (20 minutes).
        refresh = min(max(float(self.config.get("token_refresh_seconds") or 50 * 60), TOKEN_MIN_SECONDS), 55 * 60)
        with self._lock:
            now = self.clock()
            held = self._token
            if held is not None:
                age = now - held[1]
                if rejected is None and age < refresh:
                    return held[0]
                if rejected is not None and (rejected != held[0] or age < TOKEN_MIN_SECONDS):
                    return held[0]
            key = load_private_key(self.config)
            if not key or not self.config.get("key_id") or not self.config.get("team_id"):
                raise ValueError("APNs needs team_id, key_id and private_key")
            token = jwt.encode({"iss": self.config["team_id"], "iat": int(now)}, key, algorithm="ES256",
                               headers={"kid": self.config["key_id"]})
            self._token = (token, now)
            self.tokens_made += 1
            return token

    # -- build ------------------------------------------------------------------------------------------
    def build(self, message: Any, content: Content) -> tuple[dict[str, str], bytes]:
        """(headers, body) of one notification: the same for every device of the message."""
        meta = message.metadata or {}
        background = meta.get("push_type") == "background"
        aps: dict[str, Any] = {}
        if background:
            aps["content-available"] = 1
        else:
            title = str(content.data.get("title") or content.subject or "")
            body = str(content.data.get("body") or content.body)
            aps["alert"] = {k: v for k, v in (("title", title), ("body", body)) if v}
            if meta.get("sound"):
                aps["sound"] = str(meta["sound"])
            if meta.get("badge") is not None:
                aps["badge"] = int(meta["badge"])
        if meta.get("thread_id"):
            aps["thread-id"] = str(meta["thread_id"])
        custom = {**(meta.get("data") or {}), **(content.data.get("data") or {})}
        payload = {**{str(k): v for k, v in custom.items() if k != "aps"}, "comms_message_id": str(message.id),
                   "aps": aps}
        headers = {"apns-push-type": "background" if background else "alert",
                   # Apple: background pushes must use priority 5; 10 is for what the user must see now.
                   "apns-priority": "10" if int(message.priority) <= 1 and not background else "5",
                   "apns-topic": str(meta.get("topic") or self.config.get("topic") or "")}
        if meta.get("collapse_key"):
            headers["apns-collapse-id"] = str(meta["collapse_key"]).encode()[:64].decode(errors="ignore")
        if meta.get("ttl") is not None:
            headers["apns-expiration"] = str(int(message.created_at.timestamp()) + int(meta["ttl"]))
        return headers, json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    # -- send -------------------------------------------------------------------------------------------
    def prepare(self, message: Any, content: Content) -> dict:
        """On the engine's thread: the iOS devices APNs carries for this message."""
        targets, none = push.vendor_targets(message, vendor="apns")
        return {"targets": targets, "none": none}

    def send(self, message: Any, content: Content) -> SendResult:
        return self.send_prepared(message, content, self.prepare(message, content))

    def send_prepared(self, message: Any, content: Content, prepared: Any) -> SendResult:
        targets = prepared["targets"]
        if not targets:
            return prepared.get("none") or SendResult.permanent("COMMS_NO_DEVICES", "the recipient has no active push device")
        try:
            headers, body = self.build(message, content)
        except (TypeError, ValueError) as exc:
            return SendResult.permanent("invalid_payload", str(exc)[:500])
        if problem := push.oversize(body):
            return SendResult.permanent("PayloadTooLarge", problem)
        if not headers["apns-topic"]:
            return SendResult.permanent("MissingTopic", "no apns-topic (the app's bundle id) is configured")
        try:
            self.provider_token()
        except (OSError, ValueError, jwt.PyJWTError) as exc:  # our key: nothing was sent
            return SendResult.transient("403", f"APNs provider token: {exc}"[:500])
        tokens = [t[0] for t in targets]
        future = asyncio.run_coroutine_threadsafe(self._send_all(tokens, headers, body), self.loop())
        try:
            answers = future.result(timeout=2 * self._timeout() + 5)
        except FutureTimeout:  # the requests may have reached APNs
            future.cancel()
            answers = [{"outcome": "transient", "code": "network", "detail": "no answer in time",
                        "maybe_accepted": True}] * len(tokens)
        return _summarise(targets, answers)

    async def _send_all(self, tokens: list[str], headers: dict[str, str], body: bytes) -> list[dict]:
        """Every device of the message side by side, as streams of the one HTTP/2 connection."""
        return list(await asyncio.gather(*(self._one(token, headers, body) for token in tokens)))

    async def _one(self, token: str, headers: dict[str, str], body: bytes) -> dict:
        """One device: {outcome, code, ref|detail, maybe_accepted}."""
        jwt_token = self.provider_token()
        for attempt in (1, 2):
            try:
                response = await self._async_client().post(
                    f"/3/device/{token}", content=body, headers={**headers, "authorization": f"bearer {jwt_token}"})
            except httpx.ConnectError as exc:
                return {"outcome": "transient", "code": "connect", "detail": str(exc)[:200], "maybe_accepted": False}
            except httpx.TransportError as exc:  # the request may have reached APNs
                return {"outcome": "transient", "code": "network", "detail": str(exc)[:200], "maybe_accepted": True}
            if response.status_code == 200:
                return {"outcome": "sent", "ref": response.headers.get("apns-id", "")}
            reason = _reason(response)
            if response.status_code == 403 and reason in _REFRESH and attempt == 1:
                fresh = self.provider_token(rejected=jwt_token)
                if fresh != jwt_token:  # a new token may pass; the same one would fail the same way
                    jwt_token = fresh
                    continue
            return _classify(response.status_code, reason)
        raise AssertionError("unreachable")  # pragma: no cover


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason") or response.status_code)
    except ValueError:
        return str(response.status_code)


def _classify(status: int, reason: str) -> dict:
    if reason in _PRUNE:
        return {"outcome": "pruned", "code": reason}
    if status == 429 or status >= 500:
        return {"outcome": "transient", "code": str(status), "detail": reason, "maybe_accepted": False}
    if status == 403:  # our key or team: retry later, and let the breaker see it
        return {"outcome": "transient", "code": "403", "detail": reason, "maybe_accepted": False}
    return {"outcome": "permanent", "code": reason}


def _summarise(targets: list[tuple[str, str, Any]], answers: list[dict]) -> SendResult:
    devices = [{"device": d, "platform": p, "token": t[-12:], **a} for (t, p, d), a in zip(targets, answers)]
    dead = tuple((t, a["code"]) for (t, _, _), a in zip(targets, answers) if a["outcome"] == "pruned")
    retry = tuple(t for (t, _, _), a in zip(targets, answers) if a["outcome"] == "transient")
    counts = {k: sum(1 for a in answers if a["outcome"] == k) for k in ("sent", "pruned", "transient", "permanent")}
    detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v) + f" of {len(answers)} device(s)"
    data = {"devices": devices}
    sent = [a for a in answers if a["outcome"] == "sent"]
    transient = [a for a in answers if a["outcome"] == "transient"]
    if sent:
        result = SendResult(ok=True, provider_ref=sent[0]["ref"][:255], detail=detail, data=data,
                            retry_addresses=retry)
    elif transient:
        result = SendResult(ok=False, error_class="transient", code=transient[0]["code"], detail=detail,
                            maybe_accepted=any(a.get("maybe_accepted") for a in transient), data=data)
    else:
        result = SendResult(ok=False, error_class="permanent", code=answers[0]["code"], detail=detail, data=data)
    return dataclasses.replace(result, dead_addresses=dead)

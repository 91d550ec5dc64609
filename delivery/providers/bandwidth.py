"""SMS through Bandwidth's Messaging API v2, over its documented HTTP interface with httpx.

``POST {base_url}/api/v2/users/{account_id}/messages`` with HTTP Basic auth (the API user) and JSON
``{applicationId, to: [..], from, text, tag}``; Bandwidth answers ``202`` with the message (its ``id`` is
our provider_ref) and reports delivery later to the application's callback URL (webhooks.providers.
bandwidth). The ``tag`` carries our message id, so a callback names the message even before the
send's answer was recorded. No SDK: the official one is a large generated client for a two-field
exchange, and httpx (already pinned) keeps one connection pool for all sending threads.

Config (ChannelProvider options + credentials, or settings ``COMMS_BANDWIDTH``): ``account_id``,
``username``, ``password``, ``application_id``, ``from_number``; ``base_url`` (the loopback stand-in in
tests), ``timeout``. Classification follows "Messaging API errors" (dev.bandwidth.com/docs/messaging/
errors): 400 (``request-validation``: a number Bandwidth will not take) and 404/415 are permanent;
401/403 (our credentials or account), 429 and 5xx are transient. The STOP/HELP footer is the SMS
channel's (delivery.channels.sms), applied before this module sees the text.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from django.conf import settings

from comms.enums import Channel
from delivery.providers.base import Content, Provider, SendResult
from templates_app.sms_encoding import sms_segments

DEFAULT_BASE_URL = "https://messaging.bandwidth.com"
REQUIRED = ("account_id", "username", "password", "application_id", "from_number")


def classify(status: int, body: Any, text: str) -> SendResult:
    """A SendResult for a non-202 answer (Bandwidth's error body is {"type", "description", "fieldErrors"})."""
    kind = str(body.get("type") or "") if isinstance(body, dict) else ""
    detail = f"{status} {kind}: {body.get('description', '') if isinstance(body, dict) else text}"[:500]
    fields = body.get("fieldErrors") if isinstance(body, dict) else None
    if isinstance(fields, list) and fields:
        detail = (detail + " " + "; ".join(f"{f.get('fieldName')}: {f.get('description')}" for f in fields
                                           if isinstance(f, dict)))[:500]
    if status in (401, 403, 429) or status >= 500:
        # Our credentials/account or Bandwidth's capacity, not the recipient: retry, and count it
        # against the provider's circuit so failover takes over.
        return SendResult.transient(str(status), detail)
    return SendResult.permanent(kind or str(status), detail)


class BandwidthProvider(Provider):
    name = "bandwidth"
    channel = Channel.SMS

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_BANDWIDTH, **(config or {})})
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_BANDWIDTH, **config}
        return [f"{key} is missing" for key in REQUIRED if not c.get(key)]

    def client(self) -> httpx.Client:
        """One pooled client for every sending thread (httpx.Client is safe to share between threads)."""
        with self._lock:
            if self._client is None:
                c = self.config
                slots = int(getattr(settings, "COMMS_PROVIDER_CONCURRENCY", 64))
                self._client = httpx.Client(
                    base_url=(c.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
                    auth=(c["username"], c["password"]), timeout=float(c.get("timeout", 10)),
                    limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots))
            return self._client

    def release(self) -> None:
        """The connection pool outlives a batch."""

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def send(self, message: Any, content: Content) -> SendResult:
        c = self.config
        payload = {"applicationId": c["application_id"], "to": [message.recipient_address],
                   "from": c["from_number"], "text": content.body, "tag": str(message.id)}
        info = sms_segments(content.body)
        try:
            response = self.client().post(f"/api/v2/users/{c['account_id']}/messages", json=payload)
        except httpx.ConnectError as exc:  # refused/unreachable: Bandwidth never saw it
            return SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:  # a timeout after sending: Bandwidth may have the message
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 202 and not (200 <= response.status_code < 300):
            return classify(response.status_code, body, response.text[:300])
        if not isinstance(body, dict) or not body.get("id"):
            # Accepted, but without the id we cannot match its callbacks: keep it as sent, say so.
            return SendResult.sent("", detail="accepted without a message id")
        return SendResult.sent(str(body["id"]), detail=f"{info.encoding}, {info.segments} segment(s)")

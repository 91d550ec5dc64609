"""SMS through Vonage's SMS API (``POST {base_url}/sms/json``), over its documented HTTP interface with httpx.

The request is a form: ``api_key``, then either ``api_secret`` or a request signature (``sig`` with a
``timestamp``, "Signing requests", developer.vonage.com/en/getting-started/concepts/signing-messages),
``from``, ``to`` (digits only, no ``+``), ``text``, ``type=unicode`` for text outside GSM-7, our message
id as ``client-ref`` (it comes back in every delivery receipt) and ``status-report-req=1``. Vonage
answers HTTP 200 for accepted *and* refused messages: ``{"message-count", "messages": [{"status",
"message-id", "error-text", ...}]}``, one entry per concatenated part, ``status`` "0" meaning accepted.
No SDK: the official one pulls in a dozen packages for this one form post.

Config (ChannelProvider options + credentials, or settings ``COMMS_VONAGE``): ``api_key``, ``api_secret``
or ``signature_secret`` + ``signature_method`` (``md5hash``, ``md5``, ``sha1``, ``sha256``, ``sha512``),
``from_number`` (a number or an alphanumeric sender id), ``callback`` (the DLR URL, else the account's),
``base_url`` (the loopback stand-in in tests), ``timeout``.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

import httpx
from django.conf import settings

from comms.enums import Channel
from delivery.providers.base import Content, Provider, SendResult
from templates_app.sms_encoding import sms_segments

DEFAULT_BASE_URL = "https://rest.nexmo.com"
METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")

# SMS API response status codes (developer.vonage.com/en/messaging/sms/guides/troubleshooting-sms):
# the ones about our account, credentials or Vonage's capacity are retried (and count against the
# provider's circuit, so failover takes over); the ones about this message or number never are.
TRANSIENT_STATUS = {
    "1": "Throttled", "4": "Invalid Credentials", "5": "Internal Error", "8": "Partner Account Barred",
    "9": "Partner Quota Violation", "10": "Too Many Existing Binds", "11": "Account Not Enabled For HTTP",
    "14": "Invalid Signature", "23": "Invalid Callback Url", "32": "Signature And API Secret Disallowed",
}
PERMANENT_STATUS = {
    "2": "Missing Parameters", "3": "Invalid Parameters", "6": "Invalid Message", "7": "Number Barred",
    "12": "Message Too Long", "15": "Invalid Sender Address", "22": "Invalid Network Code",
    "29": "Non-Whitelisted Destination", "33": "Number De-activated",
}


def signature(params: dict[str, Any], secret: str, method: str = "md5hash") -> str:
    """Vonage's request/webhook signature: every parameter but ``sig``, sorted by name, as
    ``&name=value`` with ``&`` and ``=`` in values replaced by ``_``; ``md5hash`` appends the secret
    and takes MD5, the others are an HMAC keyed with the secret. Lower-case hex."""
    text = "".join(f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
                   for key in sorted(params) if key != "sig")
    if method == "md5hash":
        return hashlib.md5((text + secret).encode()).hexdigest()
    if method not in METHODS:
        raise ValueError(f"unknown Vonage signature method {method!r}")
    return hmac.new(secret.encode(), text.encode(), getattr(hashlib, method)).hexdigest()


def classify(status: str, text: str) -> SendResult:
    detail = f"Vonage status {status}: {text or TRANSIENT_STATUS.get(status) or PERMANENT_STATUS.get(status, '')}"
    if status in TRANSIENT_STATUS:
        return SendResult.transient(f"vonage_{status}", detail[:500])
    return SendResult.permanent(f"vonage_{status}", detail[:500])  # documented permanent, or unknown: do not loop


class VonageProvider(Provider):
    name = "vonage"
    channel = Channel.SMS

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_VONAGE, **(config or {})})
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_VONAGE, **config}
        problems = [f"{key} is missing" for key in ("api_key", "from_number") if not c.get(key)]
        if not (c.get("api_secret") or c.get("signature_secret")):
            problems.append("api_secret or signature_secret is missing")
        if c.get("signature_secret") and (c.get("signature_method") or "md5hash") not in METHODS:
            problems.append(f"signature_method must be one of {', '.join(METHODS)}")
        return problems

    def client(self) -> httpx.Client:
        """One pooled client for every sending thread (httpx.Client is safe to share between threads)."""
        with self._lock:
            if self._client is None:
                slots = int(getattr(settings, "COMMS_PROVIDER_CONCURRENCY", 64))
                self._client = httpx.Client(
                    base_url=(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
                    timeout=float(self.config.get("timeout", 10)),
                    limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots))
            return self._client

    def release(self) -> None:
        """The connection pool outlives a batch."""

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def form(self, message: Any, text: str) -> dict[str, str]:
        """The request's fields, signed when a signature secret is configured (the secret never travels)."""
        c = self.config
        form = {"api_key": c["api_key"], "from": c["from_number"], "to": message.recipient_address.lstrip("+"),
                "text": text, "client-ref": str(message.id), "status-report-req": "1"}
        if sms_segments(text).encoding != "GSM-7":
            form["type"] = "unicode"  # else Vonage sends it as GSM-7 and the text arrives garbled
        if c.get("callback"):
            form["callback"] = c["callback"]
        if c.get("signature_secret"):
            form["timestamp"] = str(int(time.time()))
            form["sig"] = signature(form, c["signature_secret"], c.get("signature_method") or "md5hash")
        else:
            form["api_secret"] = c["api_secret"]
        return form

    def send(self, message: Any, content: Content) -> SendResult:
        info = sms_segments(content.body)
        try:
            response = self.client().post("/sms/json", data=self.form(message, content.body))
        except httpx.ConnectError as exc:  # refused/unreachable: Vonage never saw it
            return SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:  # a timeout after sending: Vonage may have the message
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        if response.status_code == 429 or response.status_code >= 500:
            return SendResult.transient(str(response.status_code), response.text[:300])
        try:
            parts = response.json().get("messages")
        except (ValueError, AttributeError):
            parts = None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            return SendResult.transient("vonage_bad_answer", f"HTTP {response.status_code}: {response.text[:300]}",
                                        maybe_accepted=response.status_code == 200)
        accepted = [p for p in parts if str(p.get("status")) == "0"]
        refused = [p for p in parts if str(p.get("status")) != "0"]
        if not accepted:
            first = refused[0]
            return classify(str(first.get("status")), str(first.get("error-text") or ""))
        detail = f"{info.encoding}, {info.segments} segment(s)"
        if refused:
            # Some parts are on their way: sending again would duplicate them, so it counts as sent.
            detail += f"; {len(refused)} of {len(parts)} part(s) refused (status {refused[0].get('status')})"
        return SendResult.sent(str(accepted[0].get("message-id", "")), detail=detail)

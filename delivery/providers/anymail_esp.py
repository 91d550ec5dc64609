"""Email through an ESP's HTTP API via django-anymail (Amazon SES, SendGrid, Mailgun, Postmark, Postal, ...).

Config: ``backend`` (an anymail backend path, e.g. ``anymail.backends.amazon_ses.EmailBackend``) and
``backend_options`` (its keyword settings, e.g. ``{"client_params": {"region_name": "eu-west-1"}}``
for SES or ``{"api_key": "…"}`` for SendGrid), plus the usual ``from_email``. The MIME message is
the email channel's (delivery.channels.email: compliance headers included); the ESP's own message id is kept as provider_ref.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError
from django.conf import settings
from django.core.mail import get_connection

from comms.enums import Channel
from delivery.channels.email import build_email
from delivery.providers.base import Content, Provider, SendResult

# Provider-side "try again later" answers that arrive as 4xx (AWS throttling is an HTTP 400).
_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
                    "ServiceUnavailable", "InternalFailure", "RequestTimeout"}


def _connect_failed(cause: BaseException | None) -> bool:
    """True when the request certainly never reached the ESP (so failing over cannot send twice)."""
    if isinstance(cause, (requests.exceptions.ConnectTimeout, EndpointConnectionError, ConnectTimeoutError)):
        return True
    return isinstance(cause, requests.exceptions.ConnectionError) and "NewConnectionError" in repr(cause)


def _esp_code(exc: AnymailAPIError) -> str:
    """The ESP's own error code where its error body has one (Postmark's ErrorCode)."""
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("ErrorCode"):
        return f"postmark_{body['ErrorCode']}"
    # Postal's legacy API answers HTTP 200 {"status": "error"|"parameter-error", "data": {"code", "message"}}.
    if isinstance(body, dict) and body.get("status") in ("error", "parameter-error"):
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        return str(data.get("code") or body["status"])[:32]  # the row's provider says it is Postal's
    return ""


# Postal error codes about our server credentials or its state, not the message (postal's legacy API:
# app/controllers/legacy_api/base_controller.rb): retried, and counted against the provider's circuit.
POSTAL_TRANSIENT = {"InvalidServerAPIKey", "AccessDenied", "ServerSuspended", "InternalServerError"}


def classify(exc: AnymailAPIError) -> SendResult:
    """Transient: throttling, ESP 5xx, our credentials (401/403, which also feed the breaker), no
    answer. Permanent: any other refusal of this message (bad address, unverified sender, ...)."""
    detail = str(exc)[:500]
    cause = exc.__cause__
    code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
    if code:  # AWS (SES) answered with an error code of its own
        if code in _TRANSIENT_CODES:
            return SendResult.transient(code, detail)
        return SendResult.permanent(code, detail)
    status = exc.status_code
    if status is None:
        if _connect_failed(cause):
            return SendResult.transient("connect", detail)
        return SendResult.transient("network", detail, maybe_accepted=True)  # it may have the message
    if status == 429 or status >= 500 or status in (401, 403):
        return SendResult.transient(str(status), detail)
    code = _esp_code(exc)
    if code in POSTAL_TRANSIENT:
        return SendResult.transient(code, detail)
    return SendResult.permanent(code or str(status), detail)


class AnymailProvider(Provider):
    name = "anymail"
    channel = Channel.EMAIL

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        # One ESP connection (an HTTP session, or a boto3 client for SES) per sending thread, kept
        # between batches: anymail's backends are not documented as safe to share between threads.
        self._local = threading.local()
        self._connections: list = []
        self._lock = threading.Lock()

    # The credential each anymail backend cannot work without (SES uses the AWS credential chain).
    REQUIRED = {"sendgrid": "api_key", "mailgun": "api_key", "postmark": "server_token", "mailjet": "secret_key",
                "sparkpost": "api_key", "brevo": "api_key", "resend": "api_key", "mandrill": "api_key",
                "postal": "api_key"}

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        backend = config.get("backend", "")
        if not backend:
            return ["backend (an anymail backend path) is missing"]
        esp = backend.split(".")[-2] if backend.count(".") >= 2 else ""
        key = cls.REQUIRED.get(esp)
        options = config.get("backend_options") or {}
        setting = f"ANYMAIL_{esp.upper()}_{(key or '').upper()}"
        anymail = getattr(settings, "ANYMAIL", {}) or {}
        if key and not (options.get(key) or anymail.get(f"{esp.upper()}_{key.upper()}") or getattr(settings, setting, "")):
            return [f"backend_options.{key} is missing"]
        if esp == "postal" and not (options.get("api_url") or anymail.get("POSTAL_API_URL")):
            return ["backend_options.api_url is missing (Postal has no hosted API: your server's URL)"]
        return []

    def connection(self) -> Any:
        """This thread's ESP connection, opened on first use."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = get_connection(self.config["backend"], fail_silently=False,
                                        **self.config.get("backend_options", {}))
            connection.open()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def release(self) -> None:
        """HTTP clients keep their pools; nothing to end between batches."""

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def send(self, message: Any, content: Content) -> SendResult:
        email = build_email(message, content, self.config)
        email.connection = self.connection()
        try:
            email.send()
        except AnymailRecipientsRefused as exc:
            return SendResult.permanent("refused", str(exc)[:500])
        except AnymailAPIError as exc:
            return classify(exc)
        except AnymailError as exc:
            return SendResult.transient("esp_error", str(exc)[:500])
        status = email.anymail_status
        if status.status and status.status <= {"rejected", "invalid"}:
            return SendResult.permanent("rejected", f"ESP status {sorted(status.status)}")
        # Postal's id is a number (its per-recipient message id, which its webhooks carry as message.id).
        return SendResult.sent(str(status.message_id or email.extra_headers["Message-ID"]))


class PostalProvider(AnymailProvider):
    """Postal (postalserver.io) through anymail's Postal backend, configured from settings ``COMMS_POSTAL``
    (``api_url``, ``api_key``) when no ChannelProvider row names it; a row may instead use
    ``AnymailProvider`` with ``backend`` ``anymail.backends.postal.EmailBackend``. Postal's webhooks:
    webhooks.providers.postal."""

    name = "postal"
    BACKEND = "anymail.backends.postal.EmailBackend"

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(self.merged(config or {}))

    @classmethod
    def merged(cls, config: dict[str, Any]) -> dict[str, Any]:
        postal = getattr(settings, "COMMS_POSTAL", {}) or {}
        options = {key: value for key, value in postal.items() if value}
        options.update(config.get("backend_options") or {})
        options.update({key: config[key] for key in ("api_url", "api_key") if config.get(key)})
        return {**config, "backend": cls.BACKEND, "backend_options": options}

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        return super().config_problems(cls.merged(config))

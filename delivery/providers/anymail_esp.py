"""Email through an ESP's HTTP API via django-anymail (Amazon SES, SendGrid, Mailgun, Postmark, ...).

Config: ``backend`` (an anymail backend path, e.g. ``anymail.backends.amazon_ses.EmailBackend``) and
``backend_options`` (its keyword settings, e.g. ``{"client_params": {"region_name": "eu-west-1"}}``
for SES or ``{"api_key": "…"}`` for SendGrid), plus the usual ``from_email``. The MIME message is
the same one the SMTP provider builds; the ESP's own message id is kept as provider_ref.
"""

from __future__ import annotations

from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from django.core.mail import get_connection

from comms.enums import Channel
from delivery.providers.base import Content, Provider, SendResult
from delivery.providers.smtp import build_email

# Provider-side "try again later" answers that arrive as 4xx (AWS throttling is an HTTP 400).
_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "LimitExceededException",
                    "ServiceUnavailable", "InternalFailure", "RequestTimeout"}


class AnymailProvider(Provider):
    name = "anymail"
    channel = Channel.EMAIL

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__(config)
        self._connection = None

    def open(self) -> None:
        if self._connection is None:
            self._connection = get_connection(self.config["backend"], fail_silently=False,
                                              **self.config.get("backend_options", {}))
            self._connection.open()

    def release(self) -> None:
        """HTTP clients keep their pools; nothing to end between batches."""

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(self, message: Any, content: Content) -> SendResult:
        self.open()
        email = build_email(message, content, self.config)
        email.connection = self._connection
        try:
            email.send()
        except AnymailRecipientsRefused as exc:
            return SendResult.permanent("refused", str(exc)[:500])
        except AnymailAPIError as exc:
            cause = exc.__cause__
            code = getattr(cause, "response", {}).get("Error", {}).get("Code", "") if cause is not None else ""
            status = exc.status_code
            if code:  # the ESP answered with an error code of its own
                if code in _TRANSIENT_CODES:
                    return SendResult.transient(code, str(exc)[:500])
                return SendResult.permanent(code, str(exc)[:500])
            if status is None:  # no answer at all: it may or may not have the message
                return SendResult.transient("network", str(exc)[:500], maybe_accepted=True)
            if status == 429 or status >= 500:
                return SendResult.transient(str(status), str(exc)[:500])
            return SendResult.permanent(str(status), str(exc)[:500])
        except AnymailError as exc:
            return SendResult.transient("esp_error", str(exc)[:500])
        status = email.anymail_status
        if status.status and status.status <= {"rejected", "invalid"}:
            return SendResult.permanent("rejected", f"ESP status {sorted(status.status)}")
        return SendResult.sent(status.message_id or email.extra_headers["Message-ID"])

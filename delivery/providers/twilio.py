"""SMS through Twilio's Messages API, with the official SDK.

Config (ChannelProvider options + credentials, or settings): ``account_sid``, ``auth_token``, and
``from_number`` or ``messaging_service_sid``; ``base_url`` points the SDK elsewhere (the tests'
loopback stand-in). Classification follows Twilio's error reference: HTTP 429 and 5xx are
transient; 4xx with an error code (21211 invalid 'To', 21610 unsubscribed recipient, 21614 not a
mobile number, ...) are permanent. The STOP/HELP footer is the SMS channel's (delivery.channels.sms).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from comms.enums import Channel
from delivery.providers.base import Content, Provider, SendResult
from templates_app.sms_encoding import sms_segments

class TwilioProvider(Provider):
    name = "twilio"
    channel = Channel.SMS

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_TWILIO, **(config or {})})
        # One client (and HTTP session) per sending thread: TwilioHttpClient keeps the last
        # request/response on itself, so it is not meant to be shared by concurrent requests.
        self._local = threading.local()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_TWILIO, **config}
        problems = [f"{key} is missing" for key in ("account_sid", "auth_token") if not c.get(key)]
        if not (c.get("from_number") or c.get("messaging_service_sid")):
            problems.append("a sender (from_number or messaging_service_sid) is missing")
        return problems

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            c = self.config
            http = TwilioHttpClient(timeout=float(c.get("timeout", 10)), max_retries=0)
            client = self._local.client = Client(c["account_sid"], c["auth_token"], http_client=http)
            if c.get("base_url"):
                client.api.base_url = c["base_url"].rstrip("/")
        return client

    def release(self) -> None:
        """Each thread's client keeps its connection pool between batches."""

    def send(self, message: Any, content: Content) -> SendResult:
        body = content.body  # with the channel's STOP/HELP footer already (delivery.channels.sms)
        params: dict[str, Any] = {"to": message.recipient_address, "body": body}
        if self.config.get("messaging_service_sid"):
            params["messaging_service_sid"] = self.config["messaging_service_sid"]
        else:
            params["from_"] = self.config["from_number"]
        if self.config.get("status_callback"):
            params["status_callback"] = self.config["status_callback"]
        info = sms_segments(body)
        try:
            created = self.client().messages.create(**params)
        except TwilioRestException as exc:
            code = str(exc.code or exc.status)
            if exc.status in (401, 403, 429) or exc.status >= 500:
                # Our credentials or Twilio's capacity, not the recipient: retry (and count it
                # against the provider's circuit) rather than fail the message.
                return SendResult.transient(str(exc.status), f"{code}: {exc.msg}")
            return SendResult.permanent(code, exc.msg or f"HTTP {exc.status}")
        except OSError as exc:  # connection refused/reset before Twilio answered
            return SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # requests' timeouts after sending: Twilio may have the message
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        return SendResult.sent(created.sid, detail=f"{info.encoding}, {info.segments} segment(s)")

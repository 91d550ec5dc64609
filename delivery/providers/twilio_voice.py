"""Voice calls through Twilio's Calls API, with the official SDK (text-to-speech, TwiML ``<Say>``).

Config (ChannelProvider options + credentials, or settings ``COMMS_TWILIO`` + ``COMMS_TWILIO_VOICE``):
``account_sid``, ``auth_token``, a caller id ``from_number`` (a Twilio number or a verified one),
``base_url`` (the SDK's API host: the tests' loopback stand-in), ``callback_base`` (our public URL as
Twilio reaches it; default COMMS_WEBHOOK_BASE_URL, else COMMS_PUBLIC_URL), ``machine_detection``
(``DetectMessageEnd`` by default, so a voicemail greeting is waited out and the text is left after
the beep — the seed's "RVM" drop; ``Enable`` or ``""`` to change that) and ``ring_timeout`` seconds.

The call's TwiML is sent inline (``Twiml``, at most 4,000 characters) and built by the SDK's
``VoiceResponse``, which XML-escapes every text and attribute: the spoken text is never markup.
Progress comes back to ``/webhooks/twilio/voice`` (StatusCallback, events initiated, ringing,
answered, completed) and the pressed digits to ``/webhooks/twilio/voice/gather`` (Gather action).
Classification follows Twilio's error reference like SMS: 401/403/429 and 5xx are transient; a 4xx
with an error code (21211 invalid 'To', 21215 geographic permission, 21210 unverified caller id…)
is permanent.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from comms.enums import Channel
from delivery.channels.voice import thanks
from delivery.providers.base import Content, Provider, SendResult

TWIML_LIMIT = 4000  # Twilio refuses a Calls request whose Twiml parameter is longer (error 21236)
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


def callback_base(config: dict[str, Any]) -> str:
    return (config.get("callback_base") or settings.COMMS_WEBHOOK_BASE_URL or settings.COMMS_PUBLIC_URL).rstrip("/")


def build_twiml(content: Content, *, gather_url: str) -> str:
    """The call's TwiML. Text goes in as text (ElementTree escapes & < > and quotes), never as XML."""
    data = content.data
    language, voice = data.get("language", "en-US"), data.get("voice", "")
    say = {"language": language, **({"voice": voice} if voice else {})}
    response = VoiceResponse()
    if data.get("gather"):
        action = f"{gather_url}?{urlencode({'lang': language})}"
        gather = response.gather(action=action, method="POST", num_digits=data.get("digits", 1), timeout=6)
        gather.say(content.body, **say)
        gather.say(data["gather"], **say)
    else:
        response.say(content.body, **say)
    return str(response)


def gather_reply(language: str) -> str:
    """What the Gather action answers Twilio: a short thanks in the call's language, then hang up."""
    response = VoiceResponse()
    response.say(thanks(language), language=language)
    response.hangup()
    return str(response)


class TwilioVoiceProvider(Provider):
    name = "twilio_voice"
    channel = Channel.VOICE

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_TWILIO, **settings.COMMS_TWILIO_VOICE, **(config or {})})
        if not self.config.get("from_number"):
            self.config["from_number"] = settings.COMMS_TWILIO.get("from_number", "")
        # One client per sending thread: TwilioHttpClient keeps its last request/response on itself.
        self._local = threading.local()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_TWILIO, **settings.COMMS_TWILIO_VOICE, **config}
        problems = [f"{key} is missing" for key in ("account_sid", "auth_token") if not c.get(key)]
        if not (c.get("from_number") or settings.COMMS_TWILIO.get("from_number")):
            problems.append("a caller id (from_number) is missing")
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

    def params(self, message: Any, content: Content) -> dict[str, Any]:
        """The Calls API request (twilio.com/docs/voice/api/call-resource#create-a-call-resource)."""
        base = callback_base(self.config)
        params: dict[str, Any] = {
            "to": message.recipient_address, "from_": self.config["from_number"],
            "twiml": build_twiml(content, gather_url=f"{base}/webhooks/twilio/voice/gather"),
            "status_callback": f"{base}/webhooks/twilio/voice", "status_callback_method": "POST",
            "status_callback_event": STATUS_EVENTS, "timeout": int(self.config.get("ring_timeout") or 30),
        }
        detection = self.config.get("machine_detection", "DetectMessageEnd")
        if detection and content.data.get("voicemail", True):
            params["machine_detection"] = detection
        return params

    def send(self, message: Any, content: Content) -> SendResult:
        params = self.params(message, content)
        if len(params["twiml"]) > TWIML_LIMIT:
            return SendResult.permanent("21236", f"the call's TwiML is {len(params['twiml'])} characters; "
                                                 f"Twilio takes {TWIML_LIMIT}")
        try:
            created = self.client().calls.create(**params)
        except TwilioRestException as exc:
            code = str(exc.code or exc.status)
            if exc.status in (401, 403, 429) or exc.status >= 500:
                return SendResult.transient(str(exc.status), f"{code}: {exc.msg}")
            return SendResult.permanent(code, exc.msg or f"HTTP {exc.status}")
        except OSError as exc:  # connection refused/reset before Twilio answered: no call was placed
            return SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a timeout after sending: Twilio may be dialling already
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        return SendResult.sent(created.sid, detail=f"call {content.data.get('language', '')} "
                                                   f"{'with gather' if content.data.get('gather') else 'say'}")

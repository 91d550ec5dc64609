"""SMS through Amazon SNS (``Publish`` to a phone number) with boto3.

Config (ChannelProvider options + credentials, or settings ``COMMS_SNS``): ``region_name``,
``endpoint_url`` (moto in tests), ``aws_access_key_id``/``aws_secret_access_key`` (else the usual
AWS credential chain), ``sender_id`` (alphanumeric sender where the country allows it),
``origination_number`` (a long code / toll-free / 10DLC number), ``max_price`` (USD per message),
``sms_type`` (default ``Transactional``; marketing messages always go ``Promotional``, which AWS
routes for cost) and ``check_opt_out`` (ask SNS before each send whether the number opted out).
boto3's own retries are off: the engine retries with backoff and fails over to the next provider.

Classification: throttling and AWS-side 5xx are transient; so are credential/permission errors,
which are ours to fix, not the recipient's (they feed the circuit breaker). Invalid parameters
(a number SNS will not take) and opted-out numbers are permanent.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from django.conf import settings

from comms.enums import Category, Channel
from delivery.providers.base import Content, Provider, SendResult
from templates_app.sms_encoding import sms_segments

_TRANSIENT = {"Throttling", "ThrottlingException", "ThrottledException", "KMSThrottling", "InternalError",
              "InternalFailure", "ServiceUnavailable", "RequestTimeout", "TooManyRequestsException"}
_OURS = {"AuthorizationError", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
         "UnrecognizedClientException", "AccessDenied", "AccessDeniedException", "KMSAccessDenied"}


def classify(exc: ClientError) -> SendResult:
    """A SendResult for an SNS error answer."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "") or "ClientError"
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
    detail = f"{code}: {error.get('Message', '')}"[:500]
    if code in _TRANSIENT or status == 429 or status >= 500:
        return SendResult.transient(str(status) if status >= 500 or status == 429 else code, detail)
    if code in _OURS or status in (401, 403):
        return SendResult.transient("403", detail)
    return SendResult.permanent(code, detail)


class SnsProvider(Provider):
    name = "sns"
    channel = Channel.SMS

    def __init__(self, config: dict[str, Any] | None = None):
        super().__init__({**settings.COMMS_SNS, **(config or {})})
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        c = {**settings.COMMS_SNS, **config}
        problems = [] if c.get("region_name") else ["region_name (SNS_REGION) is missing"]
        if bool(c.get("aws_access_key_id")) != bool(c.get("aws_secret_access_key")):
            problems.append("aws_access_key_id and aws_secret_access_key must be given together")
        return problems

    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self):
        c = self.config
        timeout = float(c.get("timeout") or 10)
        return boto3.client(
            "sns", region_name=c.get("region_name") or None, endpoint_url=c.get("endpoint_url") or None,
            aws_access_key_id=c.get("aws_access_key_id") or None,
            aws_secret_access_key=c.get("aws_secret_access_key") or None,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout,
                          # boto3 clients are thread-safe: one pool serves every send in flight
                          max_pool_connections=max(10, settings.COMMS_PROVIDER_CONCURRENCY)))

    def release(self) -> None:
        """boto3 clients keep their connection pool between batches."""

    def close(self) -> None:
        self._client = None

    def attributes(self, message: Any) -> dict[str, dict[str, str]]:
        c = self.config
        sms_type = "Promotional" if message.category == Category.MARKETING else (c.get("sms_type") or "Transactional")
        attrs = {"AWS.SNS.SMS.SMSType": sms_type}
        if c.get("sender_id"):
            attrs["AWS.SNS.SMS.SenderID"] = str(c["sender_id"])
        if c.get("origination_number"):
            attrs["AWS.MM.SMS.OriginationNumber"] = str(c["origination_number"])
        if c.get("max_price"):
            attrs["AWS.SNS.SMS.MaxPrice"] = str(c["max_price"])
        return {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()}

    def send(self, message: Any, content: Content) -> SendResult:
        body = content.body  # with the channel's STOP/HELP footer already (delivery.channels.sms)
        info = sms_segments(body)
        client = self.client()
        try:
            if self.config.get("check_opt_out"):
                answer = client.check_if_phone_number_is_opted_out(phoneNumber=message.recipient_address)
                if answer.get("isOptedOut"):
                    return SendResult.permanent("opted_out", "the number replied STOP to this sender")
            published = client.publish(PhoneNumber=message.recipient_address, Message=body,
                                       MessageAttributes=self.attributes(message))
        except ClientError as exc:
            return classify(exc)
        except (EndpointConnectionError, ConnectTimeoutError) as exc:  # nothing reached AWS
            return SendResult.transient("connect", f"{type(exc).__name__}: {exc}")
        except (BotoConnectionError, BotoCoreError) as exc:  # read timeout etc.: AWS may have it
            return SendResult.transient("network", f"{type(exc).__name__}: {exc}", maybe_accepted=True)
        return SendResult.sent(published["MessageId"], detail=f"{info.encoding}, {info.segments} segment(s)")

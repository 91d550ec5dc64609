"""SMS through Amazon SNS with boto3, against moto in server mode; Twilio → SNS failover for real."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from comms.enums import Status
from delivery import health
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.providers.sns import classify
from delivery.services import drain_all
from tests.delivery.conftest import SNS_REGION, sns_sent

pytestmark = pytest.mark.django_db


def _sms(api, **extra):
    response = api.post("/api/v1/messages", {"channel": "sms", "to": "+14155550123", "body": "Code 123456", **extra},
                        format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _marketing_allowed(tenant, number):
    """Marketing SMS needs recorded consent (TCPA) and goes out 08:00-21:00 local time (+1 415: Los
    Angeles); returns a clock at noon there tomorrow."""
    import datetime as dt
    import zoneinfo

    from preferences.services import consent_record

    consent_record(tenant=tenant, address=number, channel="sms", action="granted", source="test",
                   consent_text="Text me offers")
    noon = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(12),
                               tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles"))
    return lambda: noon


def test_sms_is_published_with_sender_id_and_type(api, sns, tenant):
    clock = _marketing_allowed(tenant, "+14155550124")
    message_id = _sms(api)
    promo_id = _sms(api, to="+14155550124", category="marketing", body="Sale today")
    assert drain_all(clock=clock).sent == 2
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "sns")
    sent = sns_sent()
    assert sent[message.provider_ref] == ("+14155550123", "Code 123456")
    promo = Message.objects.get(id=promo_id)
    assert sent[promo.provider_ref] == ("+14155550124", "Sale today\nReply STOP to opt out, HELP for help.")
    wire = {p["PhoneNumber"]: p for p in sns.actions("Publish")}
    attrs = {}
    for number, form in wire.items():
        names = {k: v for k, v in form.items() if k.startswith("MessageAttributes.entry.")}
        pairs = {names[k]: names[k.replace(".Name", ".Value.StringValue")] for k in names if k.endswith(".Name")}
        attrs[number] = pairs
    assert attrs["+14155550123"] == {"AWS.SNS.SMS.SMSType": "Transactional", "AWS.SNS.SMS.SenderID": "ShopCo"}
    assert attrs["+14155550124"]["AWS.SNS.SMS.SMSType"] == "Promotional"
    assert DeliveryLog.objects.get(message_id=message_id, event="sent").detail == "GSM-7, 1 segment(s)"


def test_opted_out_number_is_permanent(api, sns):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    sns_backends[DEFAULT_ACCOUNT_ID][SNS_REGION].opt_out_numbers.append("+14155550199")
    ChannelProvider.objects.filter(name="sns").update(options={
        "region_name": SNS_REGION, "endpoint_url": sns.url, "check_opt_out": True})
    stopped, fine = _sms(api, to="+14155550199"), _sms(api)
    drain_all()
    stopped_row = Message.objects.get(id=stopped)
    assert (stopped_row.status, stopped_row.failure_code) == (Status.FAILED, "opted_out")
    assert Message.objects.get(id=fine).status == Status.SENT
    assert [p["PhoneNumber"] for p in sns.actions("Publish")] == ["+14155550123"]


def test_failover_from_twilio_to_sns(api, twilio, sns):
    twilio.failures["+14155550123"] = [(503, None, "Service Unavailable")]
    message_id = _sms(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "sns")
    assert twilio.messages == [] and list(sns_sent().values()) == [("+14155550123", "Code 123456")]
    assert health.snapshot("twilio")["consecutive_failures"] == 1
    assert health.snapshot("sns")["success_rate_1h"] == 100.0
    # A permanent refusal by the primary is the recipient's problem: no failover.
    twilio.failures["+14155550124"] = [(400, 21211, "Invalid 'To' Phone Number")]
    refused = _sms(api, to="+14155550124")
    drain_all()
    refused_row = Message.objects.get(id=refused)
    assert (refused_row.status, refused_row.provider, refused_row.failure_code) == (Status.FAILED, "twilio", "21211")
    assert len(sns_sent()) == 1


def test_unreachable_sns_is_transient(api, sns):
    from comms.devserver.embedded import free_port

    ChannelProvider.objects.filter(name="sns").update(options={
        "region_name": SNS_REGION, "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    message_id = _sms(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "connect")


def _error(code, status):
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "Publish")


@pytest.mark.parametrize("code,status,error_class,result_code", [
    ("Throttling", 400, "transient", "Throttling"),
    ("InternalError", 500, "transient", "500"),
    ("AuthorizationError", 403, "transient", "403"),
    ("InvalidClientTokenId", 403, "transient", "403"),
    ("InvalidParameter", 400, "permanent", "InvalidParameter"),
    ("EndpointDisabled", 400, "permanent", "EndpointDisabled"),
])
def test_error_classification(code, status, error_class, result_code):
    result = classify(_error(code, status))
    assert (result.error_class, result.code) == (error_class, result_code)


def test_an_invalid_parameter_from_sns_is_permanent(api, sns, tenant):
    """SNS (and moto) refuse a text over 1,600 characters: a full-length marketing text plus its footer."""
    clock = _marketing_allowed(tenant, "+14155550123")
    message_id = _sms(api, body="a" * 1600, category="marketing")
    drain_all(clock=clock)
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "InvalidParameter")

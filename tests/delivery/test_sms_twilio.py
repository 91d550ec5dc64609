"""SMS through the real Twilio SDK against a loopback stand-in of its Messages API."""

from __future__ import annotations

import pytest

from comms.enums import Status
from delivery.models import Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db
def _sms(api, **extra):
    payload = {"channel": "sms", "to": "+14155550123", "body": "Your code is 123456", **extra}
    response = api.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_sms_is_sent_through_the_sdk(api, twilio):
    message_id = _sms(api)
    assert drain_all().sent == 1
    [sent] = twilio.messages
    assert (sent["To"], sent["From"], sent["Body"]) == ("+14155550123", "+15005550006", "Your code is 123456")
    message = Message.objects.get(id=message_id)
    assert message.status == Status.SENT and message.provider_ref == sent["sid"]
    log = api.get(f"/api/v1/messages/{message_id}").json()["delivery_log"][-1]
    assert log["detail"] == "GSM-7, 1 segment(s)"


def test_marketing_sms_gets_a_stop_footer(api, twilio, tenant):
    # Marketing SMS needs recorded express consent (TCPA) and goes out 08:00-21:00 local only
    # (+1 415 is in Los Angeles): noon there tomorrow.
    import datetime as dt
    import zoneinfo

    from preferences.services import consent_record

    consent_record(tenant=tenant, address="+14155550123", channel="sms", action="granted", source="test",
                   consent_text="Text me offers")
    _sms(api, category="marketing", body="20% off today")
    noon = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(12),
                               tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles"))
    drain_all(clock=lambda: noon)
    assert twilio.messages[0]["Body"] == "20% off today\nReply STOP to opt out, HELP for help."


def test_invalid_number_is_permanent_and_429_is_retried(api, twilio):
    twilio.failures["+14155550124"] = [(400, 21211, "Invalid 'To' Phone Number")]
    twilio.failures["+14155550125"] = [(429, 20429, "Too Many Requests")]
    bad = _sms(api, to="+14155550124")
    busy = _sms(api, to="+14155550125")
    drain_all()
    bad_row, busy_row = Message.objects.get(id=bad), Message.objects.get(id=busy)
    assert (bad_row.status, bad_row.failure_code) == (Status.FAILED, "21211")
    assert (busy_row.status, busy_row.failure_code) == (Status.QUEUED, "429")


def test_wrong_credentials_are_retried_not_failed(api, twilio):
    from delivery import health

    twilio.auth_token = "rotated"
    message_id = _sms(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert message.status == Status.QUEUED and message.failure_code == "401"
    assert twilio.messages == []
    assert health.snapshot("twilio")["consecutive_failures"] == 1  # counts against the provider

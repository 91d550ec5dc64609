"""SMS through Bandwidth (Messaging API v2) and Vonage (SMS API) over their wire formats, against loopback
stand-ins that check authentication and answer with the vendors' real success and error bodies."""

from __future__ import annotations

import pytest

from comms.devserver.standins.bandwidth import BandwidthStandIn
from comms.devserver.standins.vonage import VonageStandIn
from comms.enums import Status
from delivery import health
from delivery.models import ChannelProvider, Message
from delivery.providers.vonage import signature
from delivery.services import drain_all
from tests.delivery.sms_gateways import BW, VONAGE, bandwidth_row, vonage_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def bandwidth():
    stand_in = BandwidthStandIn(BW["account_id"], BW["username"], BW["password"],
                                application_id=BW["application_id"], receipt_delay=None)
    yield stand_in
    stand_in.close()


@pytest.fixture
def vonage():
    stand_in = VonageStandIn(VONAGE["api_key"], VONAGE["api_secret"], signature_secret=VONAGE["signature_secret"],
                             signature_method="sha256", receipt_delay=None)
    yield stand_in
    stand_in.close()


def _sms(api, to="+14155550123", body="Your code is 123456", **extra):
    response = api.post("/api/v1/messages", {"channel": "sms", "to": to, "body": body, **extra}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_bandwidth_send_speaks_messaging_v2(api, bandwidth):
    bandwidth_row(bandwidth)
    message_id = _sms(api)
    assert drain_all().sent == 1
    [sent] = bandwidth.messages
    assert (sent["to"], sent["from"], sent["text"], sent["applicationId"]) == (
        ["+14155550123"], "+15005550006", "Your code is 123456", BW["application_id"])
    assert sent["tag"] == message_id  # callbacks carry our id back
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider, message.provider_ref) == (Status.SENT, "bandwidth", sent["id"])


def test_bandwidth_error_classes(api, bandwidth):
    bandwidth_row(bandwidth)
    bandwidth.failures["+14155550124"] = [(400, "request-validation", "Your request could not be accepted")]
    bandwidth.failures["+14155550125"] = [(429, "too-many-requests", "Rate limit exceeded")]
    bandwidth.failures["+14155550126"] = [(503, "service-unavailable", "Try again")]
    ids = [_sms(api, to=n) for n in ("+14155550124", "+14155550125", "+14155550126")]
    drain_all()
    got = [(m.status, m.failure_code) for m in (Message.objects.get(id=i) for i in ids)]
    assert got == [(Status.FAILED, "request-validation"), (Status.QUEUED, "429"), (Status.QUEUED, "503")]


def test_bandwidth_wrong_credentials_are_retried_and_count_against_the_provider(api, bandwidth):
    bandwidth.password = "rotated"
    bandwidth_row(bandwidth)
    message_id = _sms(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "401")
    assert bandwidth.messages == [] and health.snapshot("bandwidth")["consecutive_failures"] == 1


def test_vonage_send_with_api_secret(api, vonage):
    vonage_row(vonage)
    message_id = _sms(api)
    assert drain_all().sent == 1
    [sent] = vonage.messages
    assert (sent["to"], sent["from"], sent["text"], sent["client-ref"]) == (
        "14155550123", "15005550007", "Your code is 123456", message_id)
    assert sent["api_secret"] == VONAGE["api_secret"] and "type" not in sent
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider_ref) == (Status.SENT, sent["parts"][0]["message-id"])


def test_vonage_signed_request_never_sends_the_secret_and_unicode_goes_as_unicode(api, vonage):
    vonage_row(vonage, signed=True)
    _sms(api, body="Café ☕ 123")
    assert drain_all().sent == 1
    [sent] = vonage.messages
    assert "api_secret" not in sent and sent["type"] == "unicode"
    fields = {k: v for k, v in sent.items() if k not in ("parts",)}
    assert sent["sig"] == signature(fields, VONAGE["signature_secret"], "sha256")


def test_vonage_error_statuses_are_classified(api, vonage):
    vonage_row(vonage)
    vonage.failures["14155550124"] = ["3"]  # Invalid Parameters: the number
    vonage.failures["14155550125"] = ["1"]  # Throttled
    vonage.failures["14155550126"] = ["29"]  # Non-Whitelisted Destination
    ids = [_sms(api, to=n) for n in ("+14155550124", "+14155550125", "+14155550126")]
    drain_all()
    got = [(m.status, m.failure_code) for m in (Message.objects.get(id=i) for i in ids)]
    assert got == [(Status.FAILED, "vonage_3"), (Status.QUEUED, "vonage_1"), (Status.FAILED, "vonage_29")]


def test_vonage_bad_credentials_are_transient(api, vonage):
    vonage.api_secret = "rotated"
    vonage_row(vonage)
    message_id = _sms(api)
    drain_all()
    assert (Message.objects.get(id=message_id).status, Message.objects.get(id=message_id).failure_code) == (
        Status.QUEUED, "vonage_4")


def test_failover_from_bandwidth_to_vonage(api, bandwidth, vonage):
    bandwidth_row(bandwidth, order=1)
    vonage_row(vonage, primary=False, order=2)
    bandwidth.failures["+14155550123"] = [(503, "service-unavailable", "Try again")]
    message_id = _sms(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "vonage")
    assert bandwidth.messages == [] and [m["to"] for m in vonage.messages] == ["14155550123"]
    # A permanent refusal by the primary is the recipient's problem: no failover.
    bandwidth.failures["+14155550124"] = [(400, "request-validation", "bad number")]
    refused = _sms(api, to="+14155550124")
    drain_all()
    row = Message.objects.get(id=refused)
    assert (row.status, row.provider) == (Status.FAILED, "bandwidth") and len(vonage.messages) == 1


def test_config_problems_name_what_is_missing():
    from delivery.providers.bandwidth import BandwidthProvider
    from delivery.providers.vonage import VonageProvider

    assert "password is missing" in BandwidthProvider.config_problems({"account_id": "1"})
    assert VonageProvider.config_problems({"api_key": "k", "from_number": "1"}) == [
        "api_secret or signature_secret is missing"]
    assert VonageProvider.config_problems({"api_key": "k", "from_number": "1", "signature_secret": "s",
                                           "signature_method": "crc32"})
    assert ChannelProvider.objects.count() == 0


def test_unreachable_bandwidth_fails_over_but_a_timeout_after_sending_does_not(api, bandwidth, vonage):
    from comms.devserver.embedded import free_port

    # Nothing listens: Bandwidth certainly never saw it, so Vonage may send it.
    bandwidth_row(bandwidth, order=1, base_url=f"http://127.0.0.1:{free_port()}")
    vonage_row(vonage, primary=False, order=2)
    first = _sms(api)
    drain_all()
    row = Message.objects.get(id=first)
    assert (row.status, row.provider) == (Status.SENT, "vonage")
    # Vonage answers after our timeout: it may have the message, so no failover and no second copy elsewhere.
    ChannelProvider.objects.all().delete()
    from delivery import routing

    routing.clear_cache()
    vonage_row(vonage, order=1, timeout=0.3)
    bandwidth_row(bandwidth, name="bandwidth-2", primary=False, order=2)
    vonage.latency_ms = 1000
    second = _sms(api, to="+14155550124")
    drain_all()
    row = Message.objects.get(id=second)
    assert (row.status, row.failure_code) == (Status.QUEUED, "network")
    assert bandwidth.messages == []

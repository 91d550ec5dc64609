"""Bandwidth, Vonage and Postal: their receipts and inbound texts, as their stand-ins send them, through
our webhook intake to message statuses, suppressions and the shared STOP/START/HELP keyword service."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qsl, urlencode

import pytest

from comms.devserver.standins.bandwidth import BandwidthStandIn
from comms.devserver.standins.postal import PostalStandIn, sign_headers
from comms.devserver.standins.vonage import VonageStandIn, sign
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from preferences.models import ConsentRecord
from preferences.services import is_suppressed
from tests.delivery.sms_gateways import BW, VONAGE, bandwidth_row, vonage_row
from tests.webhooks.gateway_signers import post_all, queued
from tests.webhooks.signers import Req
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db
NUMBER = "+14155550123"


@pytest.fixture
def bandwidth():
    stand_in = BandwidthStandIn(BW["account_id"], BW["username"], BW["password"], application_id=BW["application_id"],
                                callback_url="http://testserver/webhooks/bandwidth", callback_auth=BW["callback_auth"],
                                receipt_delay=None)
    bandwidth_row(stand_in)
    yield stand_in
    stand_in.close()


@pytest.fixture
def vonage(settings):
    settings.COMMS_VONAGE_SIGNATURE_SECRET = VONAGE["signature_secret"]
    settings.COMMS_VONAGE_SIGNATURE_METHOD = "sha256"
    stand_in = VonageStandIn(VONAGE["api_key"], VONAGE["api_secret"], signature_secret=VONAGE["signature_secret"],
                             signature_method="sha256", dlr_url="http://testserver/webhooks/vonage/dlr",
                             inbound_url="http://testserver/webhooks/vonage/inbound", receipt_delay=None)
    vonage_row(stand_in)
    yield stand_in
    stand_in.close()


@pytest.fixture
def postal(settings):
    stand_in = PostalStandIn("postal-key-1", webhook_url="http://testserver/webhooks/postal", receipt_delay=None)
    settings.COMMS_POSTAL_WEBHOOK_KEYS = [stand_in.public_key]
    row = ChannelProvider(channel="email", name="postal", is_primary=True,
                          provider_class="delivery.providers.anymail_esp.PostalProvider",
                          options={"api_url": stand_in.api_url, "from_email": "orders@shop.example.com"})
    row.credentials = {"api_key": "postal-key-1"}
    row.save()
    yield stand_in
    stand_in.close()


def _send(api, channel="sms", to=NUMBER, **extra) -> Message:
    payload = {"channel": channel, "to": to, "body": "Your code is 123456", **extra}
    if channel == "email":
        payload["subject"] = "Receipt"
    response = api.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 202, response.content
    drain_all()
    message = Message.objects.get(id=response.json()["id"])
    assert message.status == Status.SENT, message.failure_code
    return message


def _deliver(stand_in, client) -> None:
    for response in post_all(stand_in, client):
        assert response.status_code == 200, response.content
    webhooks_process_pending()


# --- Bandwidth --------------------------------------------------------------------------------------------

def test_bandwidth_delivered_receipt_marks_the_message_delivered(api, client, bandwidth):
    message = _send(api)
    _deliver(bandwidth, client)
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    event = MessageEvent.objects.get(message=message)
    assert (event.provider, event.event_type) == ("bandwidth", "delivered")


@pytest.mark.parametrize("code,status,suppressed", [(4720, Status.BOUNCED, True), (4775, Status.SENT, True),
                                                    (4750, Status.FAILED, False)])
def test_bandwidth_failed_receipts_by_error_code(api, client, bandwidth, tenant, code, status, suppressed):
    bandwidth.outcomes[NUMBER] = code
    message = _send(api)
    _deliver(bandwidth, client)
    message.refresh_from_db()
    assert message.status == status  # an opt-out at the carrier unsubscribes; the message itself stays sent
    assert is_suppressed(tenant=tenant, channel="sms", address=NUMBER) is suppressed


def test_bandwidth_inbound_stop_and_start_go_through_the_keyword_service(client, bandwidth, tenant):
    bandwidth.callback_url = ""
    status, _ = bandwidth.inbound(NUMBER, "STOP", to="+15005550006")  # no URL: nothing posted
    assert status == 0
    req = _inbound_bandwidth(bandwidth, "stop")
    assert req.send(client).status_code == 200
    webhooks_process_pending()
    assert is_suppressed(tenant=tenant, channel="sms", address=NUMBER)
    record = ConsentRecord.objects.get()
    assert record.action == "withdrawn" and record.source_ref.startswith("bandwidth:")
    req.send(client)  # Bandwidth redelivers the same callback: nothing twice
    webhooks_process_pending()
    assert ConsentRecord.objects.count() == 1
    _inbound_bandwidth(bandwidth, "START").send(client)
    webhooks_process_pending()
    assert not is_suppressed(tenant=tenant, channel="sms", address=NUMBER)


def _inbound_bandwidth(stand_in, text: str, auth: str | None = None) -> Req:
    captured = []
    stand_in.receipts.post_now = lambda url, body, headers: captured.append((body, headers)) or (200, "")
    stand_in.inbound(NUMBER, text, to="+15005550006")
    body, headers = captured[0]
    if auth is not None:
        headers = {**headers, "Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return Req("/webhooks/bandwidth", body, "application/json",
               {k: v for k, v in headers.items() if k != "Content-Type"})


@pytest.mark.parametrize("auth", ["bw-callback:wrong", "someone:s3cret", None])
def test_bandwidth_callbacks_without_the_application_credentials_are_refused(client, bandwidth, tenant, auth):
    req = _inbound_bandwidth(bandwidth, "STOP", auth=auth or "")
    if auth is None:
        req.headers.pop("Authorization")
    response = req.send(client)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    row = WebhookEvent.objects.get()
    assert row.signature_valid is False and row.state == "rejected"
    assert "Authorization" not in row.headers
    webhooks_process_pending()
    assert not is_suppressed(tenant=tenant, channel="sms", address=NUMBER)


def test_bandwidth_credentials_from_settings_work_without_a_row(client, settings, tenant):
    settings.COMMS_BANDWIDTH_WEBHOOK_AUTH = "from-settings:pw"
    stand_in = BandwidthStandIn("1", "u", "p", callback_url="http://testserver/webhooks/bandwidth",
                                callback_auth="from-settings:pw", receipt_delay=None)
    try:
        assert _inbound_bandwidth(stand_in, "STOP").send(client).status_code == 200
    finally:
        stand_in.close()


def test_a_bandwidth_body_in_the_wrong_shape_is_malformed(client, bandwidth):
    req = _inbound_bandwidth(bandwidth, "STOP")
    response = Req(req.path, b'{"type": "message-received"}', req.content_type, req.headers).send(client)
    assert response.status_code == 400 and response.json()["code"] == "COMMS_WEBHOOK_MALFORMED"


# --- Vonage -----------------------------------------------------------------------------------------------

def test_vonage_signed_dlr_marks_the_message_delivered(api, client, vonage):
    message = _send(api)
    [req] = queued(vonage)
    fields = dict(parse_qsl(req.body.decode()))
    assert fields["client-ref"] == str(message.id) and fields["sig"]
    assert req.send(client).status_code == 200
    webhooks_process_pending()
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_vonage_failed_dlr_with_an_illegal_number_is_a_hard_bounce(api, client, vonage, tenant):
    vonage.outcomes["14155550123"] = ("failed", "9")
    message = _send(api)
    _deliver(vonage, client)
    message.refresh_from_db()
    assert message.status == Status.BOUNCED
    assert is_suppressed(tenant=tenant, channel="sms", address=NUMBER)


def _vonage_inbound(stand_in, text: str) -> Req:
    captured = []
    stand_in.receipts.post_now = lambda url, body, headers: captured.append(body) or (200, "")
    stand_in.inbound(NUMBER, text, to="15005550007")
    return Req("/webhooks/vonage/inbound", captured[0], "application/x-www-form-urlencoded")


def test_vonage_inbound_stop_suppresses_the_number(client, vonage, tenant):
    assert _vonage_inbound(vonage, "stop").send(client).status_code == 200
    webhooks_process_pending()
    assert is_suppressed(tenant=tenant, channel="sms", address=NUMBER)
    assert ConsentRecord.objects.get().source_ref.startswith("vonage:")


def _resign(req: Req, **changes) -> Req:
    fields = dict(parse_qsl(req.body.decode()))
    fields.update(changes)
    return Req(req.path, urlencode(fields).encode(), req.content_type, req.headers)


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "missing_sig", "old_timestamp", "json_unsigned"])
def test_vonage_requests_that_do_not_verify_are_refused(client, vonage, tenant, case):
    good = _vonage_inbound(vonage, "STOP")
    fields = dict(parse_qsl(good.body.decode()))
    if case == "tampered":
        req = _resign(good, msisdn="14155550199")
    elif case == "wrong_secret":
        req = _resign(good, sig=sign({k: v for k, v in fields.items() if k != "sig"}, "not-the-secret", "sha256"))
    elif case == "missing_sig":
        fields.pop("sig")
        req = Req(good.path, urlencode(fields).encode(), good.content_type)
    elif case == "old_timestamp":
        fields["timestamp"] = str(int(time.time()) - 3600)
        fields["sig"] = sign({k: v for k, v in fields.items() if k != "sig"}, VONAGE["signature_secret"], "sha256")
        req = Req(good.path, urlencode(fields).encode(), good.content_type)
    else:
        fields.pop("sig")
        req = Req(good.path, json.dumps(fields).encode(), "application/json")
    response = req.send(client)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    webhooks_process_pending()
    assert not is_suppressed(tenant=tenant, channel="sms", address=NUMBER)


def test_vonage_md5hash_signatures_verify_too(client, settings, tenant):
    settings.COMMS_VONAGE_SIGNATURE_SECRET, settings.COMMS_VONAGE_SIGNATURE_METHOD = "md5-secret", "md5hash"
    stand_in = VonageStandIn("k", "s", signature_secret="md5-secret", signature_method="md5hash", receipt_delay=None)
    try:
        assert _vonage_inbound(stand_in, "STOP").send(client).status_code == 200
    finally:
        stand_in.close()


# --- Postal -----------------------------------------------------------------------------------------------

def test_postal_message_sent_marks_delivered(api, client, postal):
    message = _send(api, channel="email", to="ada@example.com")
    _deliver(postal, client)
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    row = WebhookEvent.objects.get()
    assert row.event_type == "MessageSent" and row.headers["X-Postal-Signature-KID"]


@pytest.mark.parametrize("outcome,status", [("bounce", Status.BOUNCED), ("hardfail", Status.BOUNCED),
                                            ("softfail", Status.SENT), ("held", Status.SENT)])
def test_postal_failures_and_bounces(api, client, postal, tenant, outcome, status):
    postal.outcomes["ada@example.com"] = outcome
    message = _send(api, channel="email", to="ada@example.com")
    _deliver(postal, client)
    message.refresh_from_db()
    assert message.status == status
    assert is_suppressed(tenant=tenant, channel="email", address="ada@example.com") is (status == Status.BOUNCED)


def test_postal_click_is_recorded(api, client, postal):
    message = _send(api, channel="email", to="ada@example.com")
    _deliver(postal, client)
    captured = []
    postal.receipts.post_now = lambda url, body, headers: captured.append((body, headers)) or (200, "")
    postal.post_event("MessageLinkClicked", {"url": "https://shop.example.com/a", "token": "t",
                                             "ip_address": "192.0.2.1", "user_agent": "Mozilla/5.0",
                                             "message": {"id": int(message.provider_ref), "to": "ada@example.com",
                                                         "direction": "outgoing", "token": "x"}})
    body, headers = captured[0]
    Req("/webhooks/postal", body, "application/json", {k: v for k, v in headers.items() if k != "Content-Type"}
        ).send(client)
    webhooks_process_pending()
    click = MessageEvent.objects.get(message=message, event_type="clicked")
    assert click.link_url == "https://shop.example.com/a" and str(click.ip_address) == "192.0.2.0"


def _postal_req(postal, api, client) -> Req:
    _send(api, channel="email", to="ada@example.com")
    [req] = queued(postal)
    return req


@pytest.mark.parametrize("case", ["tampered", "wrong_key", "missing_sha1", "bad_sha256", "sha256_of_other_body"])
def test_postal_webhooks_that_do_not_verify_are_refused(api, client, postal, tenant, case):
    from cryptography.hazmat.primitives.asymmetric import rsa

    postal.outcomes["ada@example.com"] = "bounce"
    req = _postal_req(postal, api, client)
    headers = dict(req.headers)
    body = req.body
    if case == "tampered":
        body = body.replace(b"MessageBounced", b"MessageSent")
    elif case == "wrong_key":
        headers.update(sign_headers(rsa.generate_private_key(public_exponent=65537, key_size=2048), body))
    elif case == "missing_sha1":
        headers.pop("X-Postal-Signature")
    elif case == "bad_sha256":
        headers["X-Postal-Signature-256"] = "not base64!"
    else:  # a valid SHA-1 signature with a SHA-256 one made for another body
        headers["X-Postal-Signature-256"] = sign_headers(postal.key, body + b" ")["X-Postal-Signature-256"]
    response = Req(req.path, body, req.content_type, headers).send(client)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    webhooks_process_pending()
    assert not is_suppressed(tenant=tenant, channel="email", address="ada@example.com")


def test_an_older_postal_without_the_sha256_header_is_accepted(api, client, postal):
    req = _postal_req(postal, api, client)
    req.headers.pop("X-Postal-Signature-256")
    req.headers.pop("X-Postal-Signature-KID")
    assert req.send(client).status_code == 200


def test_postal_key_rotation_accepts_either_key(api, client, postal, settings):
    from comms.devserver.standins.postal import public_key_b64
    from cryptography.hazmat.primitives.asymmetric import rsa

    settings.COMMS_POSTAL_WEBHOOK_KEYS = [public_key_b64(rsa.generate_private_key(public_exponent=65537,
                                                                                  key_size=2048)), postal.public_key]
    assert _postal_req(postal, api, client).send(client).status_code == 200


def test_postal_without_a_configured_key_refuses_everything(api, client, postal, settings):
    req = _postal_req(postal, api, client)
    settings.COMMS_POSTAL_WEBHOOK_KEYS = []
    assert req.send(client).status_code == 401


def test_a_stop_to_a_number_applies_in_the_tenants_sending_from_it(client, bandwidth, tenant, other_tenant):
    row = ChannelProvider.objects.get(name="bandwidth")
    row.pk, row.tenant, row.name = None, other_tenant, "bandwidth-other"
    row.options = {**row.options, "from_number": "+15005550099"}
    row.save()
    req = _inbound_bandwidth(bandwidth, "STOP")  # to +15005550006: no tenant row names it → the default tenant
    assert req.send(client).status_code == 200
    webhooks_process_pending()
    assert is_suppressed(tenant=tenant, channel="sms", address=NUMBER)
    assert not is_suppressed(tenant=other_tenant, channel="sms", address=NUMBER)
    captured = []
    bandwidth.receipts.post_now = lambda url, body, headers: captured.append((body, headers)) or (200, "")
    bandwidth.inbound("+14155550188", "STOP", to="+15005550099")
    body, headers = captured[0]
    Req("/webhooks/bandwidth", body, "application/json", {"Authorization": headers["Authorization"]}).send(client)
    webhooks_process_pending()
    assert is_suppressed(tenant=other_tenant, channel="sms", address="+14155550188")
    assert not is_suppressed(tenant=tenant, channel="sms", address="+14155550188")

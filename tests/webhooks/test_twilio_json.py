"""Twilio webhooks with a JSON body (issue 13 item 2).

For a JSON body Twilio does not sign the fields: the URL it calls carries
``bodySHA256=<hex SHA-256 of the body>`` and the URL is what is signed. A captured URL and signature
must therefore not accept another body: the hash is checked as twilio.request_validator does.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from twilio.request_validator import RequestValidator

from comms.enums import Status
from preferences.models import Suppression
from tests.webhooks.signers import Req
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db

PATH = "/webhooks/twilio/status"


def signed_json(twilio, fields: dict, *, body: str | None = None) -> Req:
    """A request as Twilio makes it for a JSON body: the hash in the signed URL, the body as sent."""
    text = json.dumps(fields) if body is None else body
    query = f"bodySHA256={hashlib.sha256(text.encode()).hexdigest()}"
    url = f"http://testserver{PATH}?{query}"
    signature = RequestValidator(twilio.token).compute_signature(url, {})
    assert RequestValidator(twilio.token).validate(url, text, signature)  # the SDK accepts it
    return Req(f"{PATH}?{query}", text.encode(), "application/json", {"X-Twilio-Signature": signature})


def fields(sid: str, status: str = "undelivered", code: str = "") -> dict:
    data = {"MessageSid": sid, "MessageStatus": status, "To": "+14155550123", "AccountSid": "AC" + "1" * 32}
    if code:
        data["ErrorCode"] = code
    return data


def test_json_body_matching_its_signed_hash_is_accepted(client, signer, sent_message):
    twilio = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123")
    response = signed_json(twilio, fields(message.provider_ref, "delivered")).send(client)
    assert response.status_code == 200, response.content
    webhooks_process_pending()
    message.refresh_from_db()
    assert message.status == Status.DELIVERED and WebhookEvent.objects.get().signature_valid is True


def test_forged_body_under_a_captured_url_and_signature_is_refused(client, signer, sent_message, admin_client):
    twilio = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123")
    genuine = signed_json(twilio, fields(message.provider_ref, "delivered"))
    forged_body = json.dumps(fields(message.provider_ref, "undelivered", code="30005")).encode()  # hard bounce
    forged = Req(genuine.path, forged_body, genuine.content_type, dict(genuine.headers))
    response = forged.send(client)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    row = WebhookEvent.objects.get()
    assert row.signature_valid is False and row.state == "rejected" and "bodySHA256" in row.signature_error
    assert webhooks_process_pending() == 0
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert not MessageEvent.objects.exists() and not Suppression.objects.exists()
    page = admin_client.get(f"/admin/webhooks/webhookevent/{row.pk}/change/").content.decode()
    assert "INVALID" in page and ">valid<" not in page


def test_json_body_without_a_body_hash_is_not_signed(client, signer, sent_message):
    """The URL alone is signed: without bodySHA256 nothing covers a JSON body, so it is refused."""
    twilio = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123")
    url = f"http://testserver{PATH}"
    signature = RequestValidator(twilio.token).compute_signature(url, {})
    body = json.dumps(fields(message.provider_ref, "undelivered", code="30005")).encode()
    for content_type in ("application/json", "text/plain"):
        response = Req(PATH, body, content_type, {"X-Twilio-Signature": signature}).send(client)
        assert response.status_code == 401
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"rejected"}
    assert not Suppression.objects.exists()


def test_body_hash_compare_is_exact(client, signer, sent_message):
    """An upper-case or truncated hash is not the hash Twilio signed."""
    twilio = signer("twilio")
    message = sent_message(channel="sms", address="+14155550123")
    text = json.dumps(fields(message.provider_ref, "delivered"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    for bad in (digest.upper(), digest[:-1]):
        url = f"http://testserver{PATH}?bodySHA256={bad}"
        signature = RequestValidator(twilio.token).compute_signature(url, {})
        req = Req(f"{PATH}?bodySHA256={bad}", text.encode(), "application/json", {"X-Twilio-Signature": signature})
        assert req.send(client).status_code == 401

"""Validly signed bodies that are not in the provider's format (issue 13 items 5, 7 and 11).

A provider retries 5xx answers but not 4xx: a body in the wrong shape is answered 400 with a typed
code, kept raw as a 'malformed' row for the admin, and never processed. The same for JSON nested
too deep to parse. Errors under /webhooks/ are JSON like the API's, 404 and 405 included.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from urllib.parse import urlencode

import pytest
from django.utils.datastructures import MultiValueDict
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from comms.models import Device, Recipient
from preferences.models import Suppression
from tests.webhooks.signers import Req
from tracking.models import MessageEvent
from webhooks.intake import IntakeView
from webhooks.models import WebhookEvent
from webhooks.services import webhook_reprocess, webhooks_process_pending

pytestmark = pytest.mark.django_db


def _assert_malformed(response, code="COMMS_WEBHOOK_MALFORMED"):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code and body["message"] and isinstance(body["details"], dict)
    row = WebhookEvent.objects.get()
    assert row.signature_valid is True and row.state == "malformed" and row.error and row.body
    assert webhooks_process_pending() == 0  # never queued for processing
    row.refresh_from_db()
    assert row.state == "malformed" and row.attempts == 0
    assert not MessageEvent.objects.exists() and not Suppression.objects.exists()
    return row


def _sendgrid_object(s, ref):
    return s.sign(json.dumps(json.loads(s.events(ref=ref, event="bounce"))[0]))  # one object, not an array


def _mailgun_array(s, ref):
    req = s.event(ref=ref, event="failed", severity="permanent")
    data = json.loads(req.body)
    data["event-data"] = [data["event-data"]]  # the signature block still verifies: it covers ts + token
    req.body = json.dumps(data).encode()
    return req


def _postmark_array(s, ref):
    return s.sign(json.dumps([json.loads(s.bounce(ref=ref).body)]))


def _ses_message_not_an_event(s, ref):
    return s.sign(s.envelope(json.dumps(["bounce", ref])))


def _twilio_without_status(s, ref):
    return s.form({"MessageSid": ref, "To": "+14155550123", "ErrorCode": "30005"})


def _push_without_data(s, ref):
    body = json.dumps({"type": "push.token_invalid", "token": ref})
    msg_id = "msg_" + secrets.token_hex(8)
    when = dt.datetime.fromtimestamp(time.time(), tz=dt.timezone.utc)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
               "webhook-signature": Webhook(s.secret).sign(msg_id, when, body)}
    return Req(s.path, body.encode(), "application/json", headers)


SHAPES = {
    "sendgrid": _sendgrid_object,
    "mailgun": _mailgun_array,
    "postmark": _postmark_array,
    "ses": _ses_message_not_an_event,
    "twilio": _twilio_without_status,
    "push": _push_without_data,
}


@pytest.mark.parametrize("provider", list(SHAPES))
def test_signed_body_in_the_wrong_shape_is_400_and_kept_as_malformed(client, signer, sent_message, provider):
    s = signer(provider)
    message = sent_message(channel="sms" if provider == "twilio" else "email",
                           address="+14155550123" if provider == "twilio" else "ada@example.com")
    if provider == "push":
        recipient = Recipient.objects.create(tenant=message.tenant, external_id="u1")
        Device.objects.create(tenant=message.tenant, recipient=recipient, token="tok-1", platform="android")
    ref = "tok-1" if provider == "push" else message.provider_ref
    _assert_malformed(SHAPES[provider](s, ref).send(client))
    message.refresh_from_db()
    assert message.status == "sent"
    if provider == "push":
        assert Device.objects.get(token="tok-1").disabled_at is None


def test_twilio_inbound_without_from_is_malformed(client, signer, settings):
    s = signer("twilio")
    req = s.form({"MessageSid": "SM1", "To": "+14155550100", "Body": "STOP"}, path="/webhooks/twilio/sms")
    _assert_malformed(req.send(client))


def test_twilio_form_field_given_twice_is_malformed(client, signer, sent_message):
    s = signer("twilio")
    ref = sent_message(channel="sms", address="+14155550123").provider_ref
    fields = MultiValueDict({"MessageSid": [ref, "SM-other"], "MessageStatus": ["undelivered"],
                             "ErrorCode": ["30005"]})
    signature = RequestValidator(s.token).compute_signature(f"http://testserver{s.path}", fields)
    body = urlencode([(k, v) for k in fields for v in fields.getlist(k)]).encode()
    req = Req(s.path, body, "application/x-www-form-urlencoded", {"X-Twilio-Signature": signature})
    _assert_malformed(req.send(client))


def test_wrong_shape_with_a_bad_signature_is_still_401(client, signer, sent_message):
    s = signer("postmark")
    response = s.sign(json.dumps([{"RecordType": "Bounce"}]), auth="postmark:wrong").send(client)
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    assert WebhookEvent.objects.get().state == "rejected"


def test_a_stored_row_found_malformed_when_processed_is_marked_so(client, signer, sent_message):
    """Rows stored before the intake check (or re-processed by an admin) end 'malformed', not 'failed'."""
    s = signer("sendgrid")
    assert s.sign(s.events(ref=sent_message().provider_ref)).send(client).status_code == 200
    row = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=row.pk).update(body='{"event": "delivered"}', payload={"event": "delivered"})
    assert webhook_reprocess(webhook_id=row.pk).state == "malformed"
    row.refresh_from_db()
    assert row.state == "malformed" and "sendgrid" in row.error and not MessageEvent.objects.exists()


def test_every_intake_declares_its_shape():
    from webhooks import urls

    views = [p.callback.view_class for p in urls.urlpatterns]
    assert views and all(v.check_shape is not IntakeView.check_shape for v in views)


def test_malformed_state_is_visible_in_the_admin(admin_client, client, signer, sent_message):
    s = signer("postmark")
    _postmark_array(s, sent_message().provider_ref).send(client)
    page = admin_client.get("/admin/webhooks/webhookevent/?state=malformed")
    assert page.status_code == 200
    assert b"Malformed" in page.content and b"postmark" in page.content


# --- JSON nesting (item 5) -----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_signed_json_is_a_typed_400(client, signer, depth):
    s = signer("postmark")
    response = s.sign("[" * depth + "]" * depth).send(client)
    _assert_malformed(response, code="COMMS_JSON_TOO_DEEP")


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_unsigned_json_is_refused_not_500(client, signer, depth):
    s = signer("mailgun")  # anymail parses the body to find Mailgun's signature block
    body = '{"signature": ' + "[" * depth + "]" * depth + "}"
    response = client.generic("POST", s.path, body, content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    assert WebhookEvent.objects.get().state == "rejected"


def test_deeply_nested_ses_message_is_malformed(client, signer):
    s = signer("ses")
    _assert_malformed(s.sign(s.envelope("[" * 5000 + "]" * 5000)).send(client))


# --- JSON errors under /webhooks/ (item 11) -----------------------------------------------------------

@pytest.mark.parametrize("path", ["/webhooks/sendgrid", "/webhooks/mailgun", "/webhooks/postmark", "/webhooks/ses",
                                  "/webhooks/twilio/status", "/webhooks/twilio/sms", "/webhooks/push"])
def test_get_on_a_webhook_is_a_json_405(client, path):
    for method in ("GET", "PUT", "DELETE"):
        response = client.generic(method, path)
        assert response.status_code == 405
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "COMMS_METHOD_NOT_ALLOWED" and "POST" in response["Allow"]
    assert client.head(path).status_code == 200  # providers probe the URL
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("path", ["/webhooks/x", "/webhooks/", "/webhooks/twilio/nope"])
def test_unknown_webhook_path_is_a_json_404(client, path):
    response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "COMMS_NOT_FOUND"
    assert client.get(path).json()["code"] == "COMMS_NOT_FOUND"


# --- bodies PostgreSQL cannot store (found looking for other 500s: each was a 500 the provider retried) ------

UNSTORABLE = [
    (b'{"RecordType": "Bounce", "x": NaN}', "COMMS_INVALID_JSON"),  # RFC 8259 section 6
    (b'{"RecordType": "Bounce", "x": 1e999}', "COMMS_INVALID_JSON"),
    (b'{"RecordType": "Bounce", "x": "a\x00b"}', "COMMS_INVALID_JSON"),  # raw NUL: also no JSON
    (b'{"RecordType": "Bounce", "x": "\\u0000"}', "COMMS_WEBHOOK_MALFORMED"),  # jsonb holds no \u0000
    (b'{"RecordType": "Bounce", "x": "\\ud800"}', "COMMS_WEBHOOK_MALFORMED"),  # nor an unpaired surrogate
    (b'{"RecordType": "Bounce\\u0000", "ID": "\\u0000"}', "COMMS_WEBHOOK_MALFORMED"),  # ... nor text columns
]


@pytest.mark.parametrize("body, code", UNSTORABLE)
def test_signed_body_postgres_cannot_store_is_a_typed_400(client, signer, body, code):
    s = signer("postmark")
    response = client.generic("POST", s.path, body, content_type="application/json", **s.sign("x").meta())
    row = _assert_malformed(response, code=code)
    assert row.payload is None and "\x00" not in row.body + row.event_type + row.provider_event_id


@pytest.mark.parametrize("body, code", UNSTORABLE)
def test_unsigned_body_postgres_cannot_store_is_kept_as_rejected(client, signer, body, code):
    s = signer("postmark")
    response = client.generic("POST", s.path, body, content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "COMMS_WEBHOOK_SIGNATURE"
    assert WebhookEvent.objects.get().state == "rejected"


def test_twilio_form_value_with_nul_is_malformed(client, signer, sent_message):
    s = signer("twilio")
    ref = sent_message(channel="sms", address="+14155550123").provider_ref
    _assert_malformed(s.form({"MessageSid": ref, "MessageStatus": "delivered", "To": "+1415\x00"}).send(client))


@pytest.mark.parametrize("path", ["/webhooks/sendgrid", "/api/v1/messages"])
def test_a_bad_host_header_is_a_json_400(client, path):
    """Django answers DisallowedHost through handler400: JSON under /webhooks/ and /api/ too."""
    response = client.post(path, "[]", content_type="application/json", HTTP_HOST="bad host")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "COMMS_VALIDATION_ERROR"
    assert not WebhookEvent.objects.exists()

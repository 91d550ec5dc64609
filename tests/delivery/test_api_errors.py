"""Bad input: every case gets a typed JSON error and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.models import Scope
from delivery.models import DeliveryLog, Message, MessageBatch

pytestmark = pytest.mark.django_db

OK = {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"}


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    assert Message.objects.count() == 0
    assert DeliveryLog.objects.count() == 0
    assert MessageBatch.objects.count() == 0
    return body


@pytest.mark.parametrize("payload, status, code", [
    ({**OK, "channel": "fax"}, 400, "COMMS_UNKNOWN_CHANNEL"),
    ({**OK, "to": "not-an-email"}, 400, "COMMS_INVALID_ADDRESS"),
    ({**OK, "to": "ada@"}, 400, "COMMS_INVALID_ADDRESS"),
    ({**OK, "to": "ada@example.com\r\nBcc: x@evil.test"}, 400, "COMMS_INVALID_ADDRESS"),
    ({"channel": "email", "subject": "Hi", "body": "x"}, 400, "COMMS_INVALID_ADDRESS"),
    ({**OK, "subject": "Hi\r\nBcc: x@evil.test"}, 400, "COMMS_VALIDATION_ERROR"),
    ({**OK, "subject": "s" * 999}, 400, "COMMS_CONTENT_TOO_LARGE"),
    ({**OK, "body": "x" * (1024 * 1024 + 1)}, 400, "COMMS_CONTENT_TOO_LARGE"),
    ({**OK, "body": ""}, 400, "COMMS_VALIDATION_ERROR"),
    ({**OK, "surprise": 1}, 400, "COMMS_UNKNOWN_FIELD"),
    ({**OK, "priority": "P9"}, 400, "COMMS_VALIDATION_ERROR"),
    ({**OK, "category": "gossip"}, 400, "COMMS_VALIDATION_ERROR"),
    ({**OK, "metadata": {"x": "y" * 20000}}, 400, "COMMS_CONTENT_TOO_LARGE"),
    ({**OK, "recipient_id": "nobody", "to": ""}, 422, "COMMS_RECIPIENT_NOT_FOUND"),
    ({"channel": "email", "to": "ada@example.com", "template": "welcome"}, 422, "COMMS_TEMPLATE_NOT_FOUND"),
    ({**OK, "template": "welcome"}, 400, "COMMS_VALIDATION_ERROR"),
    ({**OK, "channel": "sms", "to": "+14155550123"}, 422, "COMMS_CHANNEL_UNAVAILABLE"),
])
def test_bad_send_requests(api, payload, status, code):
    assert_error(api.post("/api/v1/messages", payload, format="json"), status, code)


def test_phone_must_be_e164(api, settings):
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS,
                                        "sms": "delivery.providers.smtp.SmtpProvider"}
    for bad in ("4155550123", "+1 415", "+999999999999999", "(415) 555-0123"):
        assert_error(api.post("/api/v1/messages", {"channel": "sms", "to": bad, "body": "hi"}, format="json"),
                     400, "COMMS_INVALID_ADDRESS")


def test_scheduled_for_in_the_past(api):
    past = (timezone.now() - timedelta(minutes=5)).isoformat()
    assert_error(api.post("/api/v1/messages", {**OK, "scheduled_for": past}, format="json"), 400,
                 "COMMS_SCHEDULE_IN_PAST")


def test_invalid_json(api):
    response = api.generic("POST", "/api/v1/messages", '{"channel": "email", ', content_type="application/json")
    assert_error(response, 400, "COMMS_INVALID_JSON")


def test_non_json_content_type(api):
    response = api.generic("POST", "/api/v1/messages", "channel=email", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "COMMS_UNSUPPORTED_MEDIA_TYPE")


def test_missing_and_wrong_api_key(api, client):
    response = client.post("/api/v1/messages", OK, content_type="application/json")
    body = assert_error(response, 401, "COMMS_UNAUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer ck_nope_nope", "Bearer " + api.raw_key[:-1] + "X", "Basic abc", "Bearer"):
        response = client.post("/api/v1/messages", OK, content_type="application/json", HTTP_AUTHORIZATION=header)
        assert_error(response, 401, "COMMS_UNAUTHENTICATED")
    assert "key" in body["message"].lower()


def test_revoked_key_is_refused(tenant, make_client):
    from comms.models import ApiKey
    from comms.services import api_key_revoke

    client = make_client(tenant, [Scope.MESSAGES_SEND])
    assert client.post("/api/v1/messages", OK, format="json").status_code == 202
    key = ApiKey.objects.get(prefix=client.raw_key.split("_")[1])
    api_key_revoke(api_key=key)
    Message.objects.all().delete()
    assert_error(client.post("/api/v1/messages", OK, format="json"), 401, "COMMS_UNAUTHENTICATED")


def test_wrong_scope_is_forbidden(tenant, make_client):
    reader = make_client(tenant, [Scope.MESSAGES_READ])
    body = assert_error(reader.post("/api/v1/messages", OK, format="json"), 403, "COMMS_FORBIDDEN")
    assert body["details"]["required_scope"] == "messages:send"
    sender = make_client(tenant, [Scope.MESSAGES_SEND])
    assert_error(sender.get("/api/v1/messages"), 403, "COMMS_FORBIDDEN")
    assert_error(sender.put("/api/v1/recipients/u1", {"email": "a@b.co"}, format="json"), 403, "COMMS_FORBIDDEN")


def test_bulk_over_the_limit_is_413(api):
    recipients = [{"to": f"u{i}@example.com"} for i in range(100_001)]
    body = assert_error(api.post("/api/v1/messages/bulk", {**OK, "recipients": recipients}, format="json"),
                        413, "COMMS_BULK_TOO_LARGE")
    assert body["details"] == {"count": 100_001, "limit": 100_000}


def test_bulk_with_an_invalid_recipient_writes_nothing(api):
    payload = {"channel": "email", "subject": "Hi", "body": "x",
               "recipients": [{"to": "a@example.com"}, {"to": "broken"}, {"to": "c@example.com"}]}
    body = assert_error(api.post("/api/v1/messages/bulk", payload, format="json"), 400, "COMMS_INVALID_ADDRESS")
    assert body["details"]["errors"] == [{"index": 1, "code": "COMMS_INVALID_ADDRESS",
                                          "message": "'broken' is not a valid email address."}]


def test_bulk_unknown_recipient_field(api):
    payload = {**OK, "recipients": [{"to": "a@example.com", "cc": "b@example.com"}]}
    payload.pop("to")
    assert_error(api.post("/api/v1/messages/bulk", payload, format="json"), 400, "COMMS_UNKNOWN_FIELD")


def test_body_larger_than_the_request_cap(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert_error(api.post("/api/v1/messages", {**OK, "body": "x" * 5000}, format="json"), 413,
                 "COMMS_PAYLOAD_TOO_LARGE")


def test_unknown_message_and_bad_filters(api):
    response = api.get("/api/v1/messages/01a20bd0-61fe-7480-90b5-bd5155bdb3ec")
    assert_error(response, 404, "COMMS_NOT_FOUND")
    assert_error(api.get("/api/v1/messages/not-a-uuid"), 404, "COMMS_NOT_FOUND")
    assert_error(api.get("/api/v1/messages?status=lost"), 400, "COMMS_VALIDATION_ERROR")
    assert_error(api.get("/api/v1/nothing-here"), 404, "COMMS_NOT_FOUND")
    assert_error(api.put("/api/v1/messages", OK, format="json"), 405, "COMMS_METHOD_NOT_ALLOWED")

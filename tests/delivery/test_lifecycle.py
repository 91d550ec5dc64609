"""Idempotency, cancel, schedule, listing and tenant isolation through the API."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from comms.enums import Status
from delivery.models import DeliveryLog, Message
from delivery.services import drain_all, housekeeping_run

OK = {"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"}


@pytest.mark.django_db
def test_same_key_same_payload_returns_the_first_message(api):
    first = api.post("/api/v1/messages", OK, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post("/api/v1/messages", OK, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert Message.objects.count() == 1
    # The key may also travel in the body; it is the same key.
    body_key = api.post("/api/v1/messages", {**OK, "idempotency_key": "order-42"}, format="json")
    assert body_key.status_code == 200 and body_key.json()["id"] == first.json()["id"]


@pytest.mark.django_db
def test_same_key_different_payload_is_409(api):
    api.post("/api/v1/messages", OK, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = api.post("/api/v1/messages", {**OK, "body": "Changed"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 409
    assert response.json()["code"] == "COMMS_IDEMPOTENCY_CONFLICT"
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_with_one_key_create_one_message(web_server, api, smtp_sink):
    barrier = threading.Barrier(50)

    def send(_):
        with httpx.Client(base_url=web_server, timeout=30) as client:
            barrier.wait()
            return client.post("/api/v1/messages", json=OK, headers={
                "Authorization": f"Bearer {api.raw_key}", "Idempotency-Key": "burst-1"})

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(send, range(50)))
    assert sorted({r.status_code for r in responses}) in ([200, 202], [202])
    assert sum(r.status_code == 202 for r in responses) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    assert Message.objects.count() == 1
    drain_all()
    assert len(smtp_sink.messages) == 1


@pytest.mark.django_db
def test_keys_are_per_tenant(api, other_tenant, make_client):
    other = make_client(other_tenant, ["messages:send", "messages:read"])
    a = api.post("/api/v1/messages", OK, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = other.post("/api/v1/messages", OK, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_tenants_cannot_see_or_cancel_each_others_messages(api, other_tenant, make_client):
    other = make_client(other_tenant, ["messages:send", "messages:read"])
    mine = api.post("/api/v1/messages", OK, format="json").json()["id"]
    theirs = other.post("/api/v1/messages", {**OK, "to": "grace@example.com"}, format="json").json()["id"]
    assert other.get(f"/api/v1/messages/{mine}").status_code == 404
    assert other.delete(f"/api/v1/messages/{mine}").status_code == 404
    assert [m["id"] for m in other.get("/api/v1/messages").json()["results"]] == [theirs]
    assert [m["id"] for m in api.get("/api/v1/messages").json()["results"]] == [mine]
    assert Message.objects.get(id=mine).status == Status.QUEUED


@pytest.mark.django_db
def test_cancel_before_sending_and_409_after(api, smtp_sink):
    queued = api.post("/api/v1/messages", OK, format="json").json()["id"]
    response = api.delete(f"/api/v1/messages/{queued}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    sent = api.post("/api/v1/messages", {**OK, "to": "grace@example.com"}, format="json").json()["id"]
    drain_all()
    assert [m["To"] for m in smtp_sink.messages] == ["grace@example.com"]  # the cancelled one never went out
    response = api.delete(f"/api/v1/messages/{sent}")
    assert response.status_code == 409
    assert response.json()["code"] == "COMMS_NOT_CANCELLABLE"
    assert response.json()["details"] == {"status": "sent"}
    assert api.delete(f"/api/v1/messages/{queued}").status_code == 409  # already cancelled
    assert list(DeliveryLog.objects.filter(message_id=queued).values_list("event", flat=True).order_by("id")) == [
        "cancelled"]
    assert [e["event"] for e in api.get(f"/api/v1/messages/{queued}").json()["delivery_log"]] == ["queued", "cancelled"]


@pytest.mark.django_db
def test_scheduled_message_waits_then_goes(api, smtp_sink):
    at = timezone.now() + timedelta(hours=1)
    body = api.post("/api/v1/messages", {**OK, "scheduled_for": at.isoformat()}, format="json").json()
    assert body["status"] == "scheduled"
    assert drain_all().claimed == 0
    assert housekeeping_run().promoted == 0
    later = at + timedelta(seconds=1)
    assert housekeeping_run(now=later).promoted == 1
    assert drain_all(clock=lambda: later).sent == 1
    assert smtp_sink.messages[0]["X-Comms-Message-Id"] == body["id"]
    log = api.get(f"/api/v1/messages/{body['id']}").json()["delivery_log"]
    assert [e["event"] for e in log] == ["scheduled", "queued", "sent"]


@pytest.mark.django_db
def test_scheduled_message_can_be_cancelled(api, smtp_sink):
    at = timezone.now() + timedelta(hours=1)
    message_id = api.post("/api/v1/messages", {**OK, "scheduled_for": at.isoformat()}, format="json").json()["id"]
    assert api.delete(f"/api/v1/messages/{message_id}").status_code == 200
    housekeeping_run(now=at + timedelta(seconds=1))
    assert drain_all(clock=lambda: at + timedelta(seconds=2)).claimed == 0
    assert smtp_sink.messages == []


@pytest.mark.django_db
def test_list_filters_and_cursor_pagination(api, smtp_sink):
    ids = [api.post("/api/v1/messages", {**OK, "to": f"u{i}@example.com"}, format="json").json()["id"]
           for i in range(7)]
    api.delete(f"/api/v1/messages/{ids[0]}")
    page = api.get("/api/v1/messages?limit=3").json()
    assert [m["id"] for m in page["results"]] == ids[::-1][:3]  # newest first
    seen = [m["id"] for m in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [m["id"] for m in page["results"]]
    assert seen == ids[::-1]
    cancelled = api.get("/api/v1/messages?status=cancelled").json()["results"]
    assert [m["id"] for m in cancelled] == [ids[0]]
    assert [m["id"] for m in api.get("/api/v1/messages?recipient=u3@example.com").json()["results"]] == [ids[3]]


@pytest.mark.django_db
def test_send_to_a_directory_recipient(admin_api, smtp_sink):
    response = admin_api.put("/api/v1/recipients/user-7", {"email": "Lin@Example.org", "locale": "de-DE",
                                                            "timezone": "Europe/Berlin"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] == "Lin@example.org"
    assert admin_api.put("/api/v1/recipients/user-7", {"email": "lin@example.org"}, format="json").status_code == 200
    sent = admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": "user-7", "subject": "S",
                                               "body": "B"}, format="json")
    assert sent.status_code == 202 and sent.json()["recipient_id"] == "user-7"
    assert sent.json()["to"] == "lin@example.org"
    bad = admin_api.put("/api/v1/recipients/user-8", {"phone": "0155 123"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_INVALID_ADDRESS"
    bad_tz = admin_api.put("/api/v1/recipients/user-8", {"timezone": "Mars/Olympus"}, format="json")
    assert bad_tz.status_code == 400 and bad_tz.json()["code"] == "COMMS_VALIDATION_ERROR"
    no_email = admin_api.put("/api/v1/recipients/user-9", {"phone": "+14155550123"}, format="json")
    assert no_email.status_code == 201
    missing = admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": "user-9", "subject": "S",
                                                  "body": "B"}, format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "COMMS_INVALID_ADDRESS"

"""The webhook channel: Standard Webhooks signatures, rotation, 410, retries, and SSRF blocking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from comms import errors
from comms.enums import Status
from comms.netsafe import resolve_safe
from delivery.models import Message, WebhookEndpoint
from delivery.services import drain_all
from comms.devserver.standins.http_receiver import Receiver

pytestmark = pytest.mark.django_db


def verify(secret: str, headers: dict, body: str) -> bool:
    """An independent Standard Webhooks verifier, written from the spec (not the library we sign with)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return any(part == f"v1,{expected}" for part in headers["webhook-signature"].split(" "))


@pytest.fixture
def receiver(settings):
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the tests' own loopback receiver only
    server = Receiver()
    yield server
    server.close()


def _register(admin_api, url):
    response = admin_api.post("/api/v1/webhook-endpoints", {"url": url, "description": "orders"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_signed_delivery_and_secret_rotation(admin_api, receiver):
    endpoint = _register(admin_api, f"{receiver.url}/hooks")
    assert endpoint["secret"].startswith("whsec_")
    payload = json.dumps({"type": "order.paid", "id": "A-1"})
    sent = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/hooks", "body": payload},
                          format="json")
    assert sent.status_code == 202, sent.content
    assert drain_all().sent == 1
    [request] = receiver.requests
    assert request["body"] == payload and request["headers"]["content-type"] == "application/json"
    assert request["headers"]["webhook-id"] == sent.json()["id"]
    assert verify(endpoint["secret"], request["headers"], request["body"])
    assert not verify("whsec_" + base64.b64encode(b"x" * 24).decode(), request["headers"], request["body"])

    rotated = admin_api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate").json()
    admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/hooks", "body": "{}"},
                   format="json")
    drain_all()
    second = receiver.requests[1]
    assert len(second["headers"]["webhook-signature"].split(" ")) == 2  # old and new both sign in the grace window
    assert verify(endpoint["secret"], second["headers"], second["body"])
    assert verify(rotated["secret"], second["headers"], second["body"])


def test_410_disables_the_endpoint_and_5xx_retries(admin_api, receiver):
    endpoint = _register(admin_api, f"{receiver.url}/gone")
    receiver.replies.extend([(503, {}), (410, {})])
    first = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/gone", "body": "{}"},
                           format="json").json()["id"]
    drain_all()
    message = Message.objects.get(id=first)
    assert (message.status, message.failure_code) == (Status.QUEUED, "503")
    from datetime import timedelta

    from django.utils import timezone

    drain_all(clock=lambda: timezone.now() + timedelta(minutes=2))
    message.refresh_from_db()
    assert (message.status, message.failure_code) == (Status.FAILED, "410")
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).disabled_at is not None
    again = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/gone", "body": "{}"},
                           format="json")
    assert again.status_code == 422 and again.json()["code"] == "COMMS_WEBHOOK_UNVERIFIED"


def test_unregistered_url_is_refused(admin_api, receiver):
    response = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/nope", "body": "{}"},
                              format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_WEBHOOK_UNVERIFIED"
    assert Message.objects.count() == 0


SSRF = ["http://127.0.0.1/", "http://localhost:8000/", "http://[::1]/", "http://10.0.0.1/x", "http://172.16.5.4/",
        "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://2130706433/",
        "http://0x7f.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://0.0.0.0/",
        "http://[fe80::1]/", "http://100.64.0.1/", "http://0177.0.0.1/", "http://0x7f.1/", "http://017700000001/",
        "http://127.1/", "http://[::ffff:7f00:1]/"]


@pytest.mark.parametrize("url", SSRF)
def test_ssrf_corpus_is_blocked(url, admin_api):
    """Every spelling of a non-public host is the documented 422 COMMS_UNSAFE_DESTINATION (docs/api.md),
    not a 400 from a URL validator that happens to dislike the spelling (issue 13 item 6)."""
    with pytest.raises(errors.UnsafeDestination):
        resolve_safe(url)
    response = admin_api.post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "COMMS_UNSAFE_DESTINATION"
    assert not WebhookEndpoint.objects.exists()


MALFORMED_URLS = ["http://example.com:99999/", "https://example.com:65536/x", "http://example.com:-1/",
                  "http://example.com:8o/", "http://[::1/", "http://[zz::1]/", "ftp://example.com/", "example.com",
                  "http:///nohost", "http://exa mple.com/", "http://example.com/\x00", "", "x" * 3000]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_malformed_endpoint_url_is_a_400_not_a_500(url, admin_api):
    response = admin_api.post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "COMMS_VALIDATION_ERROR"
    assert not WebhookEndpoint.objects.exists()
    with pytest.raises(errors.UnsafeDestination):  # and never a destination the worker would call
        resolve_safe(url)


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://[::1/", "http://exa mple.com/"])
def test_malformed_webhook_channel_address_is_a_400(url, admin_api):
    response = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": url, "body": "{}"}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "COMMS_INVALID_ADDRESS"
    assert Message.objects.count() == 0


def test_allow_list_is_exact(settings):
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert resolve_safe("http://127.0.0.1:9/")[2] == "127.0.0.1"
    with pytest.raises(errors.UnsafeDestination):
        resolve_safe("http://127.0.0.2:9/")


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.2:9/",
                                    "http://[::1]/"])
def test_a_redirect_to_a_private_address_is_blocked(admin_api, receiver, target):
    _register(admin_api, f"{receiver.url}/redir")
    receiver.replies.append((302, {"Location": target}))
    message_id = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/redir",
                                                     "body": "{}"}, format="json").json()["id"]
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "COMMS_UNSAFE_DESTINATION")
    assert len(receiver.requests) == 1  # only the first, allowed hop was contacted


def test_a_deeply_nested_body_is_delivered_not_crashed_on(admin_api, receiver):
    """The body is the caller's string: its Content-Type sniffing must not recurse into RecursionError,
    which failed every attempt of the send (found with issue 13 item 5)."""
    _register(admin_api, f"{receiver.url}/hooks")
    body = "[" * 100_000 + "]" * 100_000
    response = admin_api.post("/api/v1/messages", {"channel": "webhook", "to": f"{receiver.url}/hooks", "body": body},
                              format="json")
    assert response.status_code == 202, response.content[:200]
    drain_all()
    message = Message.objects.get()
    assert message.status == Status.SENT, (message.status, message.failure_code)
    assert receiver.requests[0]["body"] == body
    assert receiver.requests[0]["headers"]["content-type"].startswith("text/plain")

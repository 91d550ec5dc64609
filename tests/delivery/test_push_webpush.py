"""Web Push through the real pywebpush against a loopback push service that decrypts (RFC 8291) and checks
VAPID (RFC 8292): what arrives is what the browser's service worker would read."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings

from comms.enums import Status
from comms.models import Device
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.providers.webpush import topic
from delivery.services import drain_all
from tests.webpush_support import push_service, vapid  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def _subscribe(admin_api, push_service, vapid, recipient="ada", server_key=None):
    sub = push_service.subscribe(server_key or vapid)
    response = admin_api.post(f"/api/v1/recipients/{recipient}/webpush", sub, format="json")
    assert response.status_code == 201, response.content
    return sub


@pytest.fixture
def ada(admin_api):
    assert admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json").status_code in (200, 201)


def _push(api, **extra):
    payload = {"channel": "push", "recipient_id": "ada", "subject": "Order shipped", "body": "It is on its way",
               **extra}
    response = api.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_the_push_service_decrypts_what_comms_sent(api, admin_api, ada, push_service, vapid):
    sub = _subscribe(admin_api, push_service, vapid)
    message_id = _push(api, priority="high", metadata={"collapse_key": "order-42", "ttl": 600, "data": {"order": 42},
                                                       "link": "https://shop.example.com/o/42"})
    assert drain_all().sent == 1
    [got] = push_service.received
    assert json.loads(got["payload"]) == {"title": "Order shipped", "body": "It is on its way", "data": {"order": 42},
                                          "tag": "order-42", "url": "https://shop.example.com/o/42",
                                          "message_id": message_id}
    assert (got["urgency"], got["ttl"], got["topic"]) == ("high", 600, "order-42")
    assert got["subscription"] == sub["endpoint"].rsplit("/", 1)[1]
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "webpush")
    assert message.provider_ref.startswith(push_service.origin + "/m/")  # RFC 8030 section 5: Location
    log = DeliveryLog.objects.get(message_id=message_id, event="sent")
    assert log.detail == "1 sent of 1 subscription(s)"


def test_ttl_and_urgency_follow_the_priority(api, admin_api, ada, push_service, vapid):
    _subscribe(admin_api, push_service, vapid)
    _push(api, priority="low", metadata={"collapse_key": "a key with spaces and more than thirty-two characters"})
    drain_all()
    [got] = push_service.received
    assert got["urgency"] == "low"
    assert got["ttl"] == django_settings.COMMS_PRIORITIES[3]["max_age"]
    # RFC 8030 section 5.4: a Topic is at most 32 base64url characters; other keys are hashed, not cut.
    assert got["topic"] == topic("a key with spaces and more than thirty-two characters") and len(got["topic"]) == 32
    assert topic("a key with spaces and more than thirty-two characters!") != got["topic"]


def test_gone_subscription_is_pruned_and_skipped_until_it_subscribes_again(api, admin_api, ada, push_service, vapid):
    sub = _subscribe(admin_api, push_service, vapid)
    live = _subscribe(admin_api, push_service, vapid)
    push_service.unsubscribe(sub["endpoint"].rsplit("/", 1)[1])  # the user revoked permission: 410 Gone
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).status == Status.SENT  # the other browser took it
    dead = Device.objects.get(token=sub["endpoint"])
    assert dead.disabled_at is not None and dead.disabled_reason == "WEBPUSH 410"
    assert Device.objects.get(token=live["endpoint"]).disabled_at is None
    push_service.received.clear()
    push_service.refused.clear()
    _push(api)
    drain_all()
    assert len(push_service.received) == 1 and not push_service.refused  # the dead one is not tried again


def test_unknown_subscription_404_fails_and_prunes(api, admin_api, ada, push_service, vapid):
    sub = push_service.subscribe(vapid)
    sub["endpoint"] = sub["endpoint"].rsplit("/", 1)[0] + "/never-issued"
    assert admin_api.post("/api/v1/recipients/ada/webpush", sub, format="json").status_code == 201
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "404")
    assert Device.objects.get(token=sub["endpoint"]).disabled_reason == "WEBPUSH 404"


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_or_unavailable_is_retried_not_pruned(api, admin_api, ada, push_service, vapid, status):
    sub = _subscribe(admin_api, push_service, vapid)
    push_service.fail(sub["endpoint"].rsplit("/", 1)[1], status)
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, str(status))
    assert message.next_attempt_at is not None and Device.objects.get(token=sub["endpoint"]).disabled_at is None


def test_a_subscription_made_with_another_vapid_key_is_refused_403_permanently(api, admin_api, ada, push_service, vapid):
    from comms import webpush
    from pathlib import Path

    other, _ = webpush.vapid_generate(Path(django_settings.COMMS_WEBPUSH["vapid_file"]).with_name("old.json"))
    sub = _subscribe(admin_api, push_service, vapid, server_key=other)  # subscribed before a key rotation
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "403")
    assert push_service.refused[-1]["reason"].startswith("VAPID key differs")
    assert Device.objects.get(token=sub["endpoint"]).disabled_at is None  # not pruned: the user may re-subscribe


def test_an_endpoint_that_now_resolves_to_a_private_address_is_not_contacted(settings, api, admin_api, ada,
                                                                              push_service, vapid):
    _subscribe(admin_api, push_service, vapid)
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = []  # 127.0.0.1 is loopback again: checked on every send
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "COMMS_UNSAFE_DESTINATION")
    assert not push_service.received and not push_service.refused


def test_push_chain_sends_each_vendors_devices(api, admin_api, ada, push_service, vapid, fcm):
    """[fcm, webpush]: a recipient with only a browser subscription goes straight to Web Push; FCM never
    sees the Web Push endpoint. With an app too, the app gets it through FCM and the browser through
    Web Push (its share: one follow-up)."""
    ChannelProvider.objects.filter(name="webpush").update(is_primary=False, order=2)
    _subscribe(admin_api, push_service, vapid)
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "webpush")
    assert not fcm.messages and len(push_service.received) == 1
    assert admin_api.post("/api/v1/recipients/ada/devices", {"token": "android-token-0001", "platform": "android"},
                          format="json").status_code == 201
    second = _push(api)
    drain_all()
    drain_all()
    assert Message.objects.get(id=second).provider == "fcm" and len(fcm.messages) == 1
    assert len(push_service.received) == 2
    assert [m.provider for m in Message.objects.filter(fallback_of=second)] == ["webpush"]


def test_only_a_pruned_subscription_left_refuses_the_next_push_up_front(api, admin_api, ada, push_service, vapid):
    sub = _subscribe(admin_api, push_service, vapid)
    push_service.unsubscribe(sub["endpoint"].rsplit("/", 1)[1])
    _push(api)
    drain_all()
    response = api.post("/api/v1/messages", {"channel": "push", "recipient_id": "ada", "body": "b"}, format="json")
    assert (response.status_code, response.json()["code"]) == (422, "COMMS_NO_DEVICES")


def test_a_plain_http_endpoint_written_around_the_api_is_never_posted_to(api, admin_api, ada, push_service, vapid):
    sub = _subscribe(admin_api, push_service, vapid)
    plain = sub["endpoint"].replace("https://", "http://")
    Device.objects.filter(token=sub["endpoint"]).update(token=plain)
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "COMMS_INVALID_SUBSCRIPTION")
    assert not push_service.received and not push_service.refused


def test_a_push_addressed_to_one_browser_goes_only_there_through_the_chain(api, admin_api, ada, push_service, vapid,
                                                                           fcm):
    """`to` names a Web Push endpoint of a recipient who also has an app: FCM (first in the chain) must
    not send it to the app's devices; Web Push sends it to that one browser."""
    ChannelProvider.objects.filter(name="webpush").update(is_primary=False, order=2)
    admin_api.post("/api/v1/recipients/ada/devices", {"token": "android-token-0001", "platform": "android"},
                   format="json")
    browser = _subscribe(admin_api, push_service, vapid)
    _subscribe(admin_api, push_service, vapid)  # a second browser, not addressed
    message_id = _push(api, to=browser["endpoint"])
    drain_all()
    assert Message.objects.get(id=message_id).provider == "webpush"
    assert not fcm.messages and len(push_service.received) == 1
    assert push_service.received[0]["subscription"] == browser["endpoint"].rsplit("/", 1)[1]


def test_a_browser_that_refused_for_now_gets_a_follow_up_the_others_do_not(api, admin_api, ada, push_service, vapid):
    """Two browsers; one answers 429: the message is sent, and that browser alone gets the push later
    (a follow-up addressed to its endpoint, which the push address check must accept)."""
    from datetime import timedelta

    from django.utils import timezone

    from delivery.services import waiting_promote

    busy = _subscribe(admin_api, push_service, vapid)
    _subscribe(admin_api, push_service, vapid)
    push_service.fail(busy["endpoint"].rsplit("/", 1)[1], 429)
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).status == Status.SENT and len(push_service.received) == 1
    [follow_up] = Message.objects.filter(fallback_of=message_id)
    assert (follow_up.recipient_address, follow_up.status) == (busy["endpoint"], Status.SCHEDULED)
    later = timezone.now() + timedelta(minutes=10)
    waiting_promote(now=later)
    drain_all(clock=lambda: later)
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.provider) == (Status.SENT, "webpush")
    assert [r["subscription"] for r in push_service.received][1:] == [busy["endpoint"].rsplit("/", 1)[1]]

"""One rule for which push vendor gets which device (delivery/channels/push.py): Android (and iOS unless the
tenant routes iOS to APNs) on FCM, iOS on APNs when configured, browser subscriptions on Web Push. A
message whose devices are one vendor's goes straight there; one spanning vendors reaches every vendor's
devices, through one follow-up per other vendor, made once even when the send is retried. All three
vendors are the real clients (firebase-admin, httpx over HTTP/2, pywebpush) against their stand-ins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.enums import Status
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.services import drain_all
from tests.apns_support import IPHONE, apns, apns_key  # noqa: F401  (fixtures)
from tests.webpush_support import push_service, vapid  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
PHONE = "android-token-0001"


@pytest.fixture
def ada(admin_api):
    assert admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json").status_code in (200, 201)


@pytest.fixture
def chain(fcm, apns, push_service):
    """The push chain [fcm, apns, webpush] as provider rows (FCM the primary)."""
    ChannelProvider.objects.filter(name="webpush").update(is_primary=False, order=3)
    return fcm, apns, push_service


def _device(admin_api, token, platform):
    response = admin_api.post("/api/v1/recipients/ada/devices", {"token": token, "platform": platform}, format="json")
    assert response.status_code == 201, response.content


def _browser(admin_api, push_service, vapid):
    sub = push_service.subscribe(vapid)
    assert admin_api.post("/api/v1/recipients/ada/webpush", sub, format="json").status_code == 201
    return sub["endpoint"].rsplit("/", 1)[1]


def _push(api):
    response = api.post("/api/v1/messages", {"channel": "push", "recipient_id": "ada", "subject": "Order shipped",
                                             "body": "It is on its way"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _later(minutes=10):
    return lambda: timezone.now() + timedelta(minutes=minutes)


def test_app_ios_and_browser_each_get_the_push_once(api, admin_api, ada, chain, vapid):
    fcm, apns, push_service = chain
    _device(admin_api, PHONE, "android")
    _device(admin_api, IPHONE, "ios")
    browser = _browser(admin_api, push_service, vapid)
    message_id = _push(api)
    drain_all()
    drain_all()  # the shares, if the first drain did not reach them
    assert list(fcm.by_token()) == [PHONE] and len(fcm.messages) == 1
    assert list(apns.by_token()) == [IPHONE] and len(apns.messages) == 1
    assert [r["subscription"] for r in push_service.received] == [browser]
    assert Message.objects.get(id=message_id).provider == "fcm"
    shares = {m.provider: m for m in Message.objects.filter(fallback_of=message_id)}
    assert set(shares) == {"apns", "webpush"}  # one follow-up per other vendor, not one per device
    assert shares["apns"].metadata["_push_share"] == {"vendor": "apns", "devices": [IPHONE]}
    assert all(m.status == Status.SENT for m in shares.values())


def test_a_retried_send_makes_no_second_share(api, admin_api, ada, chain, vapid):
    """FCM is down at the first try: the iOS and browser shares go out at once; the retry later reaches
    the phone, and neither share is made or sent again."""
    fcm, apns, push_service = chain
    _device(admin_api, PHONE, "android")
    _device(admin_api, IPHONE, "ios")
    browser = _browser(admin_api, push_service, vapid)
    fcm.outage = "503"
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "503")
    fcm.outage = None
    fcm.reset()
    for _ in range(3):  # the retry, and any further drain: nothing more for the shares' vendors
        drain_all(clock=_later())
    message.refresh_from_db()
    assert message.status == Status.SENT and message.attempt_count == 2
    assert list(fcm.by_token()) == [PHONE] and len(fcm.messages) == 1
    assert list(apns.by_token()) == [IPHONE] and len(apns.messages) == 1
    assert [r["subscription"] for r in push_service.received] == [browser]
    assert Message.objects.filter(fallback_of=message_id).count() == 2


def test_only_a_browser_goes_straight_to_web_push(api, admin_api, ada, chain, vapid):
    """No hop through FCM (no COMMS_OTHER_VENDOR attempt), no follow-up."""
    fcm, apns, push_service = chain
    _browser(admin_api, push_service, vapid)
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider, message.attempt_count) == (Status.SENT, "webpush", 1)
    assert len(push_service.received) == 1 and not fcm.messages and not apns.messages
    assert not Message.objects.filter(fallback_of=message_id).exists()
    assert not DeliveryLog.objects.filter(message_id=message_id, provider="fcm").exists()


def test_only_ios_on_apns_goes_straight_to_apns(api, admin_api, ada, chain):
    fcm, apns, push_service = chain
    _device(admin_api, IPHONE, "ios")
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).provider == "apns" and list(apns.by_token()) == [IPHONE]
    assert not fcm.messages and not push_service.received
    assert not Message.objects.filter(fallback_of=message_id).exists()


def test_ios_through_fcm_shares_one_fcm_message_with_android(api, admin_api, ada, chain, vapid, settings):
    """iOS routed through FCM (the default): phone and iPhone are FCM's, in one message; the browser gets
    its own share."""
    fcm, apns, push_service = chain
    settings.COMMS_PUSH_IOS_VIA = "fcm"
    _device(admin_api, PHONE, "android")
    _device(admin_api, "fcm-ios-registration-token:APA91b", "ios")
    _browser(admin_api, push_service, vapid)
    message_id = _push(api)
    drain_all()
    drain_all()
    assert set(fcm.by_token()) == {PHONE, "fcm-ios-registration-token:APA91b"} and not apns.messages
    assert len(push_service.received) == 1
    assert [m.provider for m in Message.objects.filter(fallback_of=message_id)] == ["webpush"]

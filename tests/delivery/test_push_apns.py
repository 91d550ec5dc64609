"""APNs directly: the real provider (httpx over HTTP/2 + TLS, ES256 provider token) against the
loopback APNs stand-in, which checks the JWT and answers with APNs' own error bodies."""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.devserver.standins.apns import ApnsStandIn, signing_key
from tests.apns_support import IPAD, IPHONE, KEY_ID, TEAM, TOPIC, apns, apns_key  # noqa: F401  (fixtures)
from comms.enums import Status
from comms.models import Device
from delivery import health, routing
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.providers.apns import ApnsProvider
from delivery.services import drain_all

pytestmark = pytest.mark.django_db
PHONE = "android-token-0001"


def _register(admin_api, tokens):
    admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json")
    for token, platform in tokens:
        response = admin_api.post("/api/v1/recipients/ada/devices", {"token": token, "platform": platform},
                                  format="json")
        assert response.status_code == 201, response.content


def _push(api, **extra):
    payload = {"channel": "push", "recipient_id": "ada", "subject": "Order shipped", "body": "It is on its way",
               **extra}
    response = api.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _provider() -> ApnsProvider:
    spec = routing.provider_specs(tenant_id=Message.objects.first().tenant_id if Message.objects.exists() else None,
                                  channel="push")
    return routing.instance(next(s for s in spec if s.name == "apns"))


def test_sends_over_http2_with_apns_headers_and_payload(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    message_id = _push(api, priority="high", metadata={
        "collapse_key": "order-42", "thread_id": "orders", "badge": 3, "sound": "default", "ttl": 600,
        "data": {"order": 42}})
    assert drain_all().sent == 1
    [wire] = apns.by_token()[IPHONE]
    assert wire["http_version"] == "2"
    message = Message.objects.get(id=message_id)
    headers = wire["headers"]
    assert headers["apns-push-type"] == "alert" and headers["apns-priority"] == "10"
    assert headers["apns-topic"] == TOPIC and headers["apns-collapse-id"] == "order-42"
    assert headers["apns-expiration"] == str(int(message.created_at.timestamp()) + 600)
    assert wire["payload"] == {"aps": {"alert": {"title": "Order shipped", "body": "It is on its way"},
                                       "sound": "default", "badge": 3, "thread-id": "orders"},
                               "order": 42, "comms_message_id": message_id}
    assert (message.status, message.provider, message.provider_ref) == (Status.SENT, "apns", wire["apns_id"])


def test_background_push_uses_priority_5_and_content_available(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    _push(api, priority="critical", metadata={"push_type": "background", "data": {"sync": True}})
    drain_all()
    [wire] = apns.by_token()[IPHONE]
    assert wire["headers"]["apns-push-type"] == "background" and wire["headers"]["apns-priority"] == "5"
    assert wire["payload"]["aps"] == {"content-available": 1} and wire["payload"]["sync"] is True


def test_normal_priority_is_5(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    _push(api, priority="normal")
    drain_all()
    assert apns.by_token()[IPHONE][0]["headers"]["apns-priority"] == "5"


@pytest.mark.parametrize("kind,reason", [("bad_device_token", "BadDeviceToken"), ("unregistered", "Unregistered")])
def test_dead_tokens_are_pruned(api, admin_api, apns, kind, reason):
    _register(admin_api, [(IPHONE, "ios"), (IPAD, "ios")])
    apns.fail(IPHONE, kind)
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert message.status == Status.SENT  # the iPad took it
    devices = {d["token"]: d for d in DeliveryLog.objects.get(message_id=message_id, event="sent").data["devices"]}
    assert (devices[IPHONE[-12:]]["outcome"], devices[IPHONE[-12:]]["code"]) == ("pruned", reason)
    device = Device.objects.get(token=IPHONE)
    assert device.disabled_at is not None and device.disabled_reason == f"APNS {reason}"
    apns.reset()
    _push(api)
    drain_all()
    assert list(apns.by_token()) == [IPAD]


def test_unregistered_answer_carries_the_timestamp(apns, apns_key):
    """The stand-in's 410 is APNs' documented body: reason and the time the token stopped being valid."""
    import httpx
    import jwt
    import ssl

    apns.fail(IPHONE, "unregistered")
    token = jwt.encode({"iss": TEAM, "iat": int(time.time())}, apns_key, algorithm="ES256", headers={"kid": KEY_ID})
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=str(apns.ca_file))) as client:
        response = client.post(f"{apns.url}/3/device/{IPHONE}", content=b'{"aps":{}}',
                               headers={"authorization": f"bearer {token}", "apns-topic": TOPIC,
                                        "apns-push-type": "alert"})
    assert response.status_code == 410
    body = response.json()
    assert body["reason"] == "Unregistered" and abs(body["timestamp"] / 1000 - time.time()) < 60


@pytest.mark.parametrize("kind,code", [("too_many_requests", "429"), ("500", "500"), ("503", "503")])
def test_provider_trouble_is_transient(api, admin_api, apns, kind, code):
    _register(admin_api, [(IPHONE, "ios")])
    apns.outage = kind
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, code)
    assert not Device.objects.filter(disabled_at__isnull=False).exists()
    apns.outage = None
    drain_all(clock=lambda: timezone.now() + timedelta(minutes=10))
    message.refresh_from_db()
    assert message.status == Status.SENT and len(apns.messages) == 1


def test_other_reasons_are_permanent(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    apns.fail(IPHONE, "not_for_topic")
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "DeviceTokenNotForTopic")
    assert not Device.objects.filter(disabled_at__isnull=False).exists()


def test_payload_over_4_kb_is_refused_before_the_request(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    message_id = _push(api, metadata={"data": {"blob": "x" * 5000}})
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "PayloadTooLarge")
    assert not apns.messages


def test_provider_token_is_reused_then_refreshed_before_an_hour(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    _push(api)
    _push(api)
    drain_all()
    provider = _provider()
    assert len(apns.messages) == 2 and provider.tokens_made == 1 and len(apns.jwts_seen) == 1
    offset = [51 * 60]  # past the 50-minute renewal, inside APNs' hour
    provider.clock = apns.clock = lambda: time.time() + offset[0]
    _push(api)
    drain_all()
    assert provider.tokens_made == 2 and len(apns.jwts_seen) == 2 and len(apns.messages) == 3


def test_expired_provider_token_is_renewed_once_and_the_push_retried(api, admin_api, apns):
    _register(admin_api, [(IPHONE, "ios")])
    _push(api)
    drain_all()
    provider = _provider()
    apns.max_token_age = 30 * 60  # this APNs now calls a 35-minute-old token expired
    provider.clock = apns.clock = lambda: time.time() + 35 * 60
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).status == Status.SENT
    assert provider.tokens_made == 2 and len(apns.jwts_seen) == 2


def test_a_fresh_token_apns_rejects_is_not_renewed_again(api, admin_api, apns):
    """Apple refuses token updates more often than every 20 minutes: a rejected fresh token is a
    transient credential failure (the breaker sees it), not a loop of new tokens."""
    _register(admin_api, [(IPHONE, "ios")])
    apns.trust(key_id=KEY_ID, team_id=TEAM, private_pem=signing_key())  # Apple has another key now
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "403")
    assert _provider().tokens_made == 1 and health.snapshot("apns")["consecutive_failures"] == 1


def test_ios_goes_to_fcm_by_default_and_apns_when_configured(api, admin_api, apns, fcm, settings):
    settings.COMMS_PUSH_IOS_VIA = "fcm"
    fcm_ios = "fcm-ios-registration-token:APA91b"
    _register(admin_api, [(fcm_ios, "ios"), (PHONE, "android")])
    _push(api)
    drain_all()
    assert set(fcm.by_token()) == {fcm_ios, PHONE} and not apns.messages
    # The tenant moves to APNs: its iOS installs register their APNs tokens; Android stays on FCM.
    settings.COMMS_PUSH_IOS_VIA_TENANTS = {"default": "apns"}
    settings.COMMS_PUSH_IOS_VIA = "fcm"
    admin_api.post("/api/v1/devices/unregister", {"token": fcm_ios}, format="json")
    _register(admin_api, [(IPHONE, "ios")])
    fcm.reset()
    message_id = _push(api)
    drain_all()
    drain_all()  # the iOS device's follow-up
    assert list(fcm.by_token()) == [PHONE] and list(apns.by_token()) == [IPHONE]
    follow_up = Message.objects.get(fallback_of_id=message_id)
    assert (follow_up.provider, follow_up.status) == ("apns", Status.SENT)
    assert follow_up.metadata["_push_share"] == {"vendor": "apns", "devices": [IPHONE]}  # APNs' share of the message
    assert Message.objects.get(id=message_id).provider == "fcm"


def test_only_ios_devices_go_straight_to_apns(api, admin_api, apns, fcm):
    _register(admin_api, [(IPHONE, "ios")])
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).provider == "apns"
    assert not fcm.messages and not Message.objects.filter(fallback_of_id=message_id).exists()


def test_an_fcm_shaped_ios_token_is_refused_when_apns_carries_ios(admin_api, apns):
    admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json")
    response = admin_api.post("/api/v1/recipients/ada/devices",
                              {"token": "fcm-ios-registration-token:APA91b", "platform": "ios"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "COMMS_DEVICE_TOKEN_INVALID"
    assert not Device.objects.exists()
    # Upper-case hex is the same device: stored lower-case, so a re-registration is one row.
    response = admin_api.post("/api/v1/recipients/ada/devices", {"token": IPHONE.upper(), "platform": "ios"},
                              format="json")
    assert response.status_code == 201 and response.json()["token"] == IPHONE


def test_missing_key_config_is_reported_and_never_sent(apns):
    assert ApnsProvider.config_problems({"team_id": TEAM, "topic": TOPIC, "private_key": "", "key_id": ""}) == [
        "APNs needs key_id, private_key"]
    assert "not an ES256" in ApnsProvider.config_problems({"team_id": TEAM, "topic": TOPIC, "key_id": KEY_ID,
                                                          "private_key": "-----BEGIN PRIVATE KEY-----\nxx\n"})[0]
    assert ApnsProvider.config_problems({"team_id": TEAM, "topic": TOPIC, "key_id": KEY_ID,
                                         "private_key": signing_key()}) == []


def test_provider_without_a_key_fails_transient_without_a_request(api, admin_api, apns):
    row = ChannelProvider.objects.get(name="apns")
    row.credentials = {"key_id": KEY_ID, "private_key": ""}
    row.save()
    routing.clear_cache()
    _register(admin_api, [(IPHONE, "ios")])
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "403") and not apns.messages


def test_start_up_check_names_what_apns_lacks(settings):
    from delivery.checks import provider_credentials

    row = ChannelProvider(name="apns-bad", channel="push", provider_class="delivery.providers.apns.ApnsProvider",
                          options={"topic": TOPIC})
    row.credentials = {}
    row.save()
    settings.COMMS_CHANNEL_PROVIDERS = {**settings.COMMS_CHANNEL_PROVIDERS,
                                       "push": ["delivery.providers.fcm.FcmProvider", "delivery.providers.apns.ApnsProvider"]}
    settings.COMMS_APNS = {**settings.COMMS_APNS, "team_id": TEAM, "key_id": KEY_ID, "topic": ""}
    messages = {e.msg for e in provider_credentials(None)}
    assert "ChannelProvider 'apns-bad' (push): APNs needs private_key." in messages  # the rest from settings
    assert "push provider from settings (ApnsProvider): APNs needs topic, private_key." in messages


def test_an_apns_outage_fails_over_to_the_next_apns_row(api, admin_api, apns, apns_key):
    """Failover chains: iOS devices move down the APNs rows only (an FCM row cannot carry an APNs token)."""
    backup = ApnsStandIn(topics=(TOPIC,))
    backup.trust(key_id=KEY_ID, team_id=TEAM, private_pem=apns_key)
    try:
        row = ChannelProvider(channel="push", name="apns-backup", provider_class="delivery.providers.apns.ApnsProvider",
                              order=3, options={"endpoint": backup.url, "ca_file": str(backup.ca_file), "topic": TOPIC,
                                                "team_id": TEAM, "timeout": 2})
        row.credentials = {"key_id": KEY_ID, "private_key": apns_key}
        row.save()
        _register(admin_api, [(IPHONE, "ios")])
        apns.outage = "503"
        message_id = _push(api)
        drain_all()
        message = Message.objects.get(id=message_id)
        assert (message.status, message.provider) == (Status.SENT, "apns-backup")
        assert not apns.messages and list(backup.by_token()) == [IPHONE]
    finally:
        backup.close()


def test_the_apns_row_rate_limit_defers_the_excess(api, admin_api, apns):
    ChannelProvider.objects.filter(name="apns").update(rate_limit=1)
    routing.clear_cache()
    _register(admin_api, [(IPHONE, "ios")])
    ids = [_push(api) for _ in range(3)]
    drain_all()
    statuses = sorted(Message.objects.filter(id__in=ids).values_list("status", flat=True))
    assert statuses.count(Status.SENT) == 1 and len(apns.messages) == 1
    deferred = Message.objects.filter(id__in=ids).exclude(status=Status.SENT)
    assert all(m.next_attempt_at > m.created_at for m in deferred)


def test_device_tokens_are_not_logged_per_request(api, admin_api, apns, caplog):
    """httpx logs every request's URL at INFO, and an APNs URL ends in the device token."""
    _register(admin_api, [(IPHONE, "ios")])
    _push(api)
    with caplog.at_level("INFO"):
        drain_all()
    assert len(apns.messages) == 1
    assert not [r for r in caplog.records if IPHONE in r.getMessage()]


def test_many_sending_threads_share_one_http2_connection(apns, apns_key):
    """The engine calls send_prepared from many threads at once: every push is a stream of the one
    connection, and none is lost to a stream-id race (the sync httpx client shared across threads
    sent HEADERS out of order and APNs answered GOAWAY PROTOCOL_ERROR)."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from delivery.providers.base import Content

    provider = ApnsProvider({"team_id": TEAM, "key_id": KEY_ID, "private_key": apns_key, "topic": TOPIC,
                             "endpoint": apns.url, "ca_file": str(apns.ca_file), "timeout": 10})
    message = Message(id=uuid.uuid4(), priority=2, metadata={}, created_at=timezone.now())
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a race shows up in one run
    try:
        def one(i: int):
            targets = [(f"{i:064x}", "ios", None), (f"{i + 10**6:064x}", "ios", None)]
            return provider.send_prepared(message, Content(subject="t", body="b"), {"targets": targets})

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(one, range(300)))
        assert [r for r in results if not r.ok or r.retry_addresses] == []
        assert len(apns.messages) == 600 and len(apns.connections) == 1 and provider.tokens_made == 1
    finally:
        sys.setswitchinterval(switch)
        provider.close()


def test_a_raw_apns_token_without_a_recipient_goes_to_apns(api, apns, fcm, settings):
    response = api.post("/api/v1/messages", {"channel": "push", "to": IPAD, "subject": "s", "body": "b"},
                        format="json")
    drain_all()
    assert Message.objects.get(id=response.json()["id"]).provider == "apns" and list(apns.by_token()) == [IPAD]
    settings.COMMS_PUSH_IOS_VIA = "fcm"  # iOS through FCM: a raw token is FCM's, as before
    response = api.post("/api/v1/messages", {"channel": "push", "to": IPHONE, "subject": "s", "body": "b"},
                        format="json")
    drain_all()
    assert Message.objects.get(id=response.json()["id"]).provider == "fcm" and "android" in fcm.by_token()[IPHONE][0]


def test_start_up_warns_when_ios_goes_to_apns_without_an_apns_provider(settings):
    from delivery.checks import ios_push_route

    assert ios_push_route(None) == []  # iOS through FCM: nothing to say
    settings.COMMS_PUSH_IOS_VIA_TENANTS = {"shop": "apns"}
    [warning] = ios_push_route(None)
    assert warning.id == "delivery.W001" and "no APNs provider" in warning.msg
    row = ChannelProvider(name="apns", channel="push", provider_class="delivery.providers.apns.ApnsProvider")
    row.save()
    assert ios_push_route(None) == []

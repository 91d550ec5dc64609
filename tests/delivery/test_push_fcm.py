"""Push through the real firebase-admin SDK against a loopback FCM HTTP v1 + OAuth2 stand-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.enums import Status
from comms.models import Device
from delivery import health
from delivery.models import DeliveryLog, Message
from delivery.services import drain_all, waiting_promote

pytestmark = pytest.mark.django_db
PHONE, TABLET, BROWSER = "android-token-0001", "ios-token-00000002", "web-token-00000003"


@pytest.fixture
def ada(admin_api):
    admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json")
    for token, platform in ((PHONE, "android"), (TABLET, "ios"), (BROWSER, "web")):
        response = admin_api.post("/api/v1/recipients/ada/devices", {"token": token, "platform": platform}, format="json")
        assert response.status_code == 201


def _push(api, **extra):
    payload = {"channel": "push", "recipient_id": "ada", "subject": "Order shipped", "body": "It is on its way",
               **extra}
    response = api.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _later(minutes=10):
    return lambda: timezone.now() + timedelta(minutes=minutes)


def test_fans_out_to_every_device_with_platform_options(api, ada, fcm):
    message_id = _push(api, priority="high", metadata={
        "collapse_key": "order-42", "thread_id": "orders", "link": "https://shop.example.com/o/42",
        "ttl": 600, "data": {"order": 42}})
    assert drain_all().sent == 1
    sent = fcm.by_token()
    assert set(sent) == {PHONE, TABLET, BROWSER}
    android, apns, web = sent[PHONE][0], sent[TABLET][0], sent[BROWSER][0]
    for wire in (android, apns, web):
        assert wire["notification"] == {"title": "Order shipped", "body": "It is on its way"}
        assert wire["data"] == {"order": "42", "comms_message_id": message_id}
    assert android["android"]["collapse_key"] == "order-42" and android["android"]["priority"] == "high"
    assert android["android"]["ttl"] == "600s" and "apns" not in android and "webpush" not in android
    assert apns["apns"]["headers"]["apns-collapse-id"] == "order-42"
    assert apns["apns"]["headers"]["apns-priority"] == "10"
    assert apns["apns"]["payload"]["aps"]["thread-id"] == "orders"
    assert web["webpush"]["headers"] == {"Urgency": "high", "Topic": "order-42", "TTL": "600"}
    assert web["webpush"]["fcm_options"]["link"] == "https://shop.example.com/o/42"
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "fcm")
    assert message.provider_ref.startswith("projects/comms-test/messages/")
    log = api.get(f"/api/v1/messages/{message_id}").json()["delivery_log"][-1]
    assert log["detail"] == "3 sent of 3 device(s)"
    assert sorted(d["platform"] for d in log["data"]["devices"]) == ["android", "ios", "web"]
    _push(api)  # the access token is reused: one OAuth exchange for both messages
    drain_all()
    assert fcm.token_requests == 1 and len(fcm.messages) == 6


def test_dead_tokens_are_pruned_and_skipped_next_time(api, ada, fcm):
    fcm.fail(PHONE, "unregistered")
    fcm.fail(TABLET, "invalid_token")
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert message.status == Status.SENT  # the browser took it
    outcomes = {d["platform"]: (d["outcome"], d.get("code")) for d in
                DeliveryLog.objects.get(message_id=message_id, event="sent").data["devices"]}
    assert outcomes == {"android": ("pruned", "UNREGISTERED"), "ios": ("pruned", "INVALID_TOKEN"), "web": ("sent", None)}
    disabled = Device.objects.filter(disabled_at__isnull=False)
    assert sorted(disabled.values_list("token", flat=True)) == [PHONE, TABLET]
    fcm.reset()
    _push(api)
    drain_all()
    assert list(fcm.by_token()) == [BROWSER]


def test_a_bad_payload_is_permanent_but_prunes_nothing(api, ada, fcm):
    for token in (PHONE, TABLET, BROWSER):
        fcm.fail(token, "invalid_payload")
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "INVALID_ARGUMENT")
    assert not Device.objects.filter(disabled_at__isnull=False).exists()


def test_all_devices_dead_fails_and_continues_by_email(api, ada, fcm, smtp_sink):
    for token in (PHONE, TABLET, BROWSER):
        fcm.fail(token, "unregistered")
    message_id = _push(api, fallback_channels=["email"])
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "UNREGISTERED")
    follow_up = Message.objects.get(fallback_of_id=message_id)
    assert (follow_up.channel, follow_up.status) == ("email", Status.SENT)
    assert smtp_sink.messages[0]["Subject"] == "Order shipped"
    # Nobody can be pushed to any more: a new push with fallback starts on email right away.
    response = api.post("/api/v1/messages", {"channel": "push", "recipient_id": "ada", "subject": "s", "body": "b",
                                             "fallback_channels": ["email"]}, format="json")
    assert response.json()["channel"] == "email"


@pytest.mark.parametrize("kind,code", [("503", "503"), ("500", "500"), ("quota", "429"), ("apns_auth", "401")])
def test_provider_trouble_is_retried(api, ada, fcm, kind, code):
    fcm.outage = kind
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, code)
    assert health.snapshot("fcm")["consecutive_failures"] == 1
    assert not Device.objects.filter(disabled_at__isnull=False).exists()
    fcm.outage = None
    drain_all(clock=_later())
    message.refresh_from_db()
    assert message.status == Status.SENT and len(fcm.messages) == 3


def test_retry_after_a_partial_outage_goes_to_the_devices_left(api, ada, fcm):
    fcm.fail(PHONE, "unregistered")
    fcm.fail(TABLET, "503")
    fcm.fail(BROWSER, "503")
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).status == Status.QUEUED
    drain_all(clock=_later())
    assert Message.objects.get(id=message_id).status == Status.SENT
    assert set(fcm.by_token()) == {TABLET, BROWSER}


def test_a_device_that_refused_for_now_gets_a_follow_up_the_others_do_not(api, ada, fcm):
    """The phone and the browser took it, the tablet answered 503: the message is sent, and the
    tablet alone gets the same push later (once, however often the outcome is recorded)."""
    fcm.fail(TABLET, "503")
    message_id = _push(api, metadata={"collapse_key": "order-42"})
    drain_all()
    message = Message.objects.get(id=message_id)
    assert message.status == Status.SENT and set(fcm.by_token()) == {PHONE, BROWSER}
    [follow_up] = Message.objects.filter(fallback_of=message_id)
    assert (follow_up.channel, follow_up.recipient_address, follow_up.status) == ("push", TABLET, Status.SCHEDULED)
    log = DeliveryLog.objects.get(message_id=message_id, event="retrying")
    assert log.data == {"follow_up": str(follow_up.id), "device": TABLET[-12:]}
    waiting_promote(now=_later()())  # beat's housekeeping: the follow-up's time has come
    drain_all(clock=_later())
    follow_up.refresh_from_db()
    assert follow_up.status == Status.SENT
    assert {t: len(m) for t, m in fcm.by_token().items()} == {PHONE: 1, BROWSER: 1, TABLET: 1}
    tablet = fcm.by_token()[TABLET][0]
    assert tablet["notification"]["title"] == "Order shipped" and tablet["apns"]["headers"]["apns-collapse-id"] == "order-42"
    from delivery.services.follow_ups import message_follow_up

    again = message_follow_up(message=message, addresses=(TABLET,), at=timezone.now())
    assert [m.id for m in again] == [follow_up.id]  # the same key: no second follow-up


def test_a_timeout_is_retried_on_the_same_provider(api, ada, fcm):
    """FCM may have the message after a timeout: no failover, retry later on the same provider."""
    fcm.timeout_seconds = 3  # the provider's timeout is 2 s
    fcm.fail(PHONE, "timeout")
    Device.objects.exclude(token=PHONE).delete()
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "network")
    [entry] = DeliveryLog.objects.get(message_id=message_id, event="retrying").data["devices"]
    assert entry["maybe_accepted"] is True


def test_unreachable_fcm_fails_over_to_the_next_push_provider(api, ada, fcm):
    from comms.devserver.embedded import free_port
    from delivery.models import ChannelProvider

    ChannelProvider.objects.filter(name="fcm").update(options={"endpoint": f"http://127.0.0.1:{free_port()}",
                                                               "timeout": 2})
    backup = ChannelProvider(channel="push", name="fcm-backup", provider_class="delivery.providers.fcm.FcmProvider",
                             order=2, options={"endpoint": fcm.url, "timeout": 2})
    backup.credentials = {"service_account": fcm.service_account()}
    backup.save()
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.provider) == (Status.SENT, "fcm-backup")
    assert health.snapshot("fcm")["consecutive_failures"] == 1


def test_an_untrusted_service_account_is_retried_and_nothing_is_sent(api, ada, fcm):
    from delivery.models import ChannelProvider
    from comms.devserver.standins.fcm import service_account

    row = ChannelProvider.objects.get(name="fcm")
    row.credentials = {"service_account": service_account(token_uri=f"{fcm.url}/token", project_id="comms-test")}
    row.save()
    message_id = _push(api)
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.QUEUED, "401")
    assert fcm.messages == [] or len(fcm.messages) == 0


def test_a_raw_token_and_one_device_of_a_recipient(api, ada, fcm):
    raw = api.post("/api/v1/messages", {"channel": "push", "to": "unknown-install-token-9", "body": "hi"}, format="json")
    assert raw.status_code == 202
    one = _push(api, to=TABLET)
    drain_all()
    assert set(fcm.by_token()) == {"unknown-install-token-9", TABLET}
    assert fcm.by_token()[TABLET][0]["apns"]["headers"]["apns-priority"] == "5"
    assert Message.objects.get(id=one).recipient_address == TABLET


def test_push_without_devices_is_a_typed_error(api, admin_api, fcm):
    admin_api.put("/api/v1/recipients/bob", {"email": "bob@example.com"}, format="json")
    response = api.post("/api/v1/messages", {"channel": "push", "recipient_id": "bob", "body": "hi"}, format="json")
    assert response.status_code == 422 and response.json()["code"] == "COMMS_NO_DEVICES"
    bulk = api.post("/api/v1/messages/bulk", {"channel": "push", "body": "hi", "recipients": [{"recipient_id": "bob"}]},
                    format="json")
    assert bulk.json()["details"]["errors"][0]["code"] == "COMMS_NO_DEVICES"
    bad = api.post("/api/v1/messages", {"channel": "push", "to": "no", "body": "hi"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_INVALID_ADDRESS"
    assert Message.objects.count() == 0


def test_devices_gone_between_accept_and_send(api, ada, fcm):
    message_id = _push(api)
    Device.objects.all().update(disabled_at=timezone.now())
    drain_all()
    message = Message.objects.get(id=message_id)
    assert (message.status, message.failure_code) == (Status.FAILED, "COMMS_NO_DEVICES")
    assert fcm.messages == [] or len(fcm.messages) == 0


def test_the_proxy_environment_is_read_once_per_app_not_on_every_request(api, ada, fcm, monkeypatch):
    """requests re-reads the *_proxy variables and ~/.netrc on every request (trust_env): a sixth of
    a push's CPU (bench/push_cpu.py). The provider reads them once, when it makes its app, so a proxy
    variable that appears later does not reroute the sends of the app already made."""
    from comms.devserver.embedded import free_port

    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    _push(api)
    assert drain_all().sent == 1  # the app is made with no proxy in the environment
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    message_id = _push(api)
    drain_all()
    assert Message.objects.get(id=message_id).status == Status.SENT
    assert len(fcm.messages) == 6


def test_a_proxy_in_the_environment_when_the_app_is_made_is_used(api, ada, fcm, monkeypatch):
    """Reading the environment once must not drop proxy support: the sends go through HTTP_PROXY."""
    import http.client
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import urlsplit

    relayed: list[str] = []

    class Proxy(BaseHTTPRequestHandler):  # a forwarding HTTP proxy: absolute-URI requests (RFC 9112 §3.2.2)
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            target = urlsplit(self.path)
            relayed.append(target.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
            upstream.request("POST", target.path, body=body, headers={k: v for k, v in self.headers.items()
                                                                      if k.lower() not in ("proxy-connection", "host")})
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        def log_message(self, *args):
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
        message_id = _push(api)
        drain_all()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert Message.objects.get(id=message_id).status == Status.SENT
    assert relayed.count("/v1/projects/comms-test/messages:send") == 3 and len(fcm.messages) == 3

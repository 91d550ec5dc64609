"""The Web Push browser kit in headless Chromium: the page served by comms registers its service worker,
asks for permission, fetches the VAPID key and subscribes, then hands the subscription to comms.

What Chromium cannot do here: headless Chromium's PushManager.subscribe() talks only to Google's push
service (FCM), which cannot be pointed at our loopback stand-in and is not reachable offline; headless
Chromium refuses it outright ("Registration failed - permission denied", even with the notifications
permission granted). The first test shows the real flow up to that call (permission, VAPID key fetched,
service worker registered and activated at scope /webpush/) and the browser's refusal shown on the page,
with nothing posted to comms. The second test replaces only PushManager.subscribe/getSubscription (an init script) with
one that returns a real subscription issued by the stand-in push service, so everything after it runs
for real: the script's POST with the inbox token, the stored device, a push through pywebpush that the
stand-in decrypts, the service worker showing that decrypted payload as a notification (handed to it
with the DevTools protocol's ServiceWorker.deliverPushMessage, as the browser's push service would),
and the "Turn off" path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from comms.models import Device
from comms.services import recipient_upsert, tenant_get_default
from delivery.inbox import inbox_token
from tests.browser import browser_page
from tests.webpush_support import push_service, vapid  # noqa: F401  (fixtures)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = Path("/tmp/shots-i18-webpush")


def _token() -> str:
    recipient, _ = recipient_upsert(tenant=tenant_get_default(), external_id="ada", data={"email": "ada@example.com"})
    return inbox_token(recipient=recipient)


def _watch(page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))


def test_real_subscribe_is_attempted_with_our_vapid_key_and_its_failure_is_shown(live_server, vapid):
    problems: list[str] = []
    with browser_page() as page:
        _watch(page, problems)
        page.context.grant_permissions(["notifications"], origin=live_server.url)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{live_server.url}/webpush/subscribe?token={_token()}")
        page.click("[data-comms-webpush=subscribe]")
        status = page.locator("[data-comms-webpush-status]")
        status.locator("text=/Could not|Notifications are on/").wait_for(timeout=20_000)
        text = status.inner_text()
        scope = page.evaluate("async () => (await navigator.serviceWorker.getRegistration('/webpush/'))?.scope")
        state = page.evaluate("async () => (await navigator.serviceWorker.ready).active.state")
    assert f"{live_server.url}/api/v1/webpush/vapid-public-key" in requests
    print("Chromium's answer:", text)
    assert scope == f"{live_server.url}/webpush/" and state == "activated"
    # Chromium reached PushManager.subscribe and its push service refused (no FCM here): said on the page,
    # nothing was posted to comms.
    assert text.startswith("Could not turn on notifications:"), text
    assert f"{live_server.url}/api/v1/inbox/webpush" not in requests
    assert problems == []


STUB = """
(() => {
  const sub = %s;
  let current = null;
  const fake = { endpoint: sub.endpoint, toJSON: () => sub,
                 unsubscribe: async () => { current = null; return true; } };
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    window.__askedKey = btoa(String.fromCharCode(...key)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
    window.__userVisibleOnly = options.userVisibleOnly;
    current = fake;
    return fake;
  };
})();
"""


def test_page_hands_the_subscription_to_comms_and_a_push_reaches_it(live_server, push_service, vapid):
    from delivery.services import drain_all
    from delivery.services.enqueue import SendSpec, message_enqueue

    sub = push_service.subscribe(vapid)
    token = _token()
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        _watch(page, problems)
        page.context.grant_permissions(["notifications"], origin=live_server.url)
        page.add_init_script(STUB % json.dumps(sub))
        page.goto(f"{live_server.url}/webpush/subscribe?token={token}")
        page.screenshot(path=str(SHOTS / "webpush-subscribe-1280-before.png"), full_page=True)
        page.click("[data-comms-webpush=subscribe]")
        page.locator("[data-comms-webpush-status][data-state=ok]").wait_for(timeout=20_000)
        assert page.locator("[data-comms-webpush-status]").inner_text() == "Notifications are on for this browser."
        assert page.evaluate("window.__askedKey") == vapid and page.evaluate("window.__userVisibleOnly") is True
        page.screenshot(path=str(SHOTS / "webpush-subscribe-1280.png"), full_page=True)
        device = Device.objects.get(token=sub["endpoint"])
        assert (device.platform, device.recipient.external_id) == ("webpush", "ada")

        message_enqueue(tenant=tenant_get_default(),
                        spec=SendSpec(channel="push", recipient_id="ada", subject="Hi", body="from the page"))
        drain_all()
        payload = push_service.received[-1]["payload"]
        assert json.loads(payload)["body"] == "from the page"
        # The service worker's push handler, fed the payload the push service decrypted (what the browser
        # would hand it), through the DevTools protocol: it shows the notification.
        cdp = page.context.new_cdp_session(page)
        registrations: list[dict] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
        cdp.send("ServiceWorker.enable")
        page.wait_for_timeout(500)
        reg = next(r for r in registrations if r["scopeURL"].endswith("/webpush/") and not r["isDeleted"])
        cdp.send("ServiceWorker.deliverPushMessage", {"origin": live_server.url, "registrationId": reg["registrationId"],
                                                      "data": payload})
        shown = page.evaluate("""async () => {
            const reg = await navigator.serviceWorker.getRegistration('/webpush/');
            for (let i = 0; i < 50; i++) {
              const n = await reg.getNotifications();
              if (n.length) return n.map(x => ({title: x.title, body: x.body, data: x.data}));
              await new Promise(r => setTimeout(r, 100));
            }
            return [];
        }""")
        assert [(n["title"], n["body"]) for n in shown] == [("Hi", "from the page")]
        assert shown[0]["data"]["message_id"] == json.loads(payload)["message_id"]

        page.set_viewport_size({"width": 360, "height": 760})
        page.screenshot(path=str(SHOTS / "webpush-subscribe-360.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") == 0
        page.click("[data-comms-webpush=unsubscribe]")
        page.locator("text=Notifications are off for this browser.").wait_for(timeout=20_000)
        assert not Device.objects.filter(token=sub["endpoint"]).exists()
    assert problems == []


def test_page_without_a_token_says_so_and_disables_the_buttons(live_server):
    with browser_page() as page:
        page.goto(f"{live_server.url}/webpush/subscribe")
        assert "missing its token" in page.locator("main").inner_text()
        assert page.locator("[data-comms-webpush=subscribe]").is_disabled()
        page.set_viewport_size({"width": 360, "height": 760})
        page.screenshot(path=str(SHOTS / "webpush-subscribe-360-notoken.png"), full_page=True)

"""`make run` with COMMS_PUSH_IOS_VIA=apns: an iOS device's push goes through the APNs stand-in
(HTTP/2 + TLS), the Android device's through the FCM one, both from the real workers."""

from __future__ import annotations

import re

import httpx
import pytest

from comms.devserver.embedded import free_port
from tests.comms.test_comms_up import ComposedSystem, _ok
from tests.conftest import wait_for


@pytest.mark.slow
def test_make_run_sends_ios_through_the_apns_standin(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMS_PUSH_IOS_VIA", "apns")
    web_port = free_port()
    system = ComposedSystem(tmp_path / "var", web_port, free_port())
    try:
        wait_for(lambda: "comms is up" in system.text, timeout=120, interval=0.2, message="the banner")
        assert re.search(r"APNs stand-in https://127\.0\.0\.1:\d+ .*iOS devices go to APNs", system.text)
        key = re.search(r"API key\s+(ck_\S+)", system.text).group(1)
        base, auth = f"http://127.0.0.1:{web_port}", {"Authorization": f"Bearer {key}"}
        wait_for(lambda: _ok(f"{base}/api/v1/health"), timeout=60, message="web")
        assert httpx.put(f"{base}/api/v1/recipients/ios-user", headers=auth, json={}).status_code in (200, 201)
        iphone = "d4" * 32
        for token, platform in ((iphone, "ios"), ("make-run-android-0001", "android")):
            r = httpx.post(f"{base}/api/v1/recipients/ios-user/devices", headers=auth,
                           json={"token": token, "platform": platform})
            assert r.status_code == 201, r.text
        refused = httpx.post(f"{base}/api/v1/recipients/ios-user/devices", headers=auth,
                             json={"token": "not-an-apns-token:123", "platform": "ios"})
        assert refused.status_code == 400 and refused.json()["code"] == "COMMS_DEVICE_TOKEN_INVALID"
        r = httpx.post(f"{base}/api/v1/messages", headers=auth,
                       json={"channel": "push", "recipient_id": "ios-user", "subject": "Hello", "body": "via APNs"})
        assert r.status_code == 202, r.text
        wait_for(lambda: f"push -> apns …{iphone[-10:]} (alert): 'Hello' 'via APNs'" in system.text
                 and "push -> android …" in system.text, timeout=60, interval=0.3,
                 message="the APNs and FCM stand-ins to print the pushes")
    finally:
        code = system.stop()
    assert code == 0, system.text[-3000:]

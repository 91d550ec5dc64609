"""Web Push under `make run`: the VAPID pair is made once, the push service stand-in is started and
named in the banner, and a push goes through pywebpush to it and is decrypted there."""

from __future__ import annotations

import re

import httpx
import pytest

from comms.devserver.embedded import free_port
from tests.comms.test_comms_up import ComposedSystem
from tests.conftest import wait_for


def test_standin_children_enable_web_push(tmp_path):
    from comms.devserver.up_standins import standin_children

    env: dict[str, str] = {}
    children, lines = standin_children(tmp_path, env)
    assert env["WEBPUSH_ENABLED"] == "1" and env["COMMS_OUTBOUND_ALLOWED_NETWORKS"] == "127.0.0.1/32"
    bundle = (tmp_path / "standins" / "webpush-ca.pem").read_text()
    assert (tmp_path / "standins" / "webpush-standin.crt").read_text() in bundle
    assert bundle.count("BEGIN CERTIFICATE") > 50  # the public CAs too: real push services still verify
    assert "comms.devserver.standins.webpush" in children["webpush"]["cmd"]
    assert any("push service stand-in https://127.0.0.1:" in line for line in lines)
    # An operator who configured Web Push themselves gets no stand-in.
    own, _ = standin_children(tmp_path, {"WEBPUSH_ENABLED": "1"})
    assert "webpush" not in own


@pytest.mark.slow
def test_make_run_sends_web_push_to_the_standin(tmp_path):
    var = tmp_path / "var"
    web_port = free_port()
    system = ComposedSystem(var, web_port, free_port())
    try:
        wait_for(lambda: "comms is up" in system.text, timeout=120, interval=0.2, message="the banner")
        key = re.search(r"API key\s+(ck_\S+)", system.text).group(1)
        public = re.search(r"VAPID key\s+(\S+) \(in (\S+);", system.text)
        assert public and public.group(2) == str(var / "vapid.json")
        origin = re.search(r"push service stand-in (https://127\.0\.0\.1:\d+)", system.text).group(1)
        base, auth = f"http://127.0.0.1:{web_port}", {"Authorization": f"Bearer {key}"}
        wait_for(lambda: _ok(f"{base}/api/v1/health"), timeout=60, message="web")
        assert httpx.get(f"{base}/api/v1/webpush/vapid-public-key").json() == {"public_key": public.group(1)}
        wait_for(lambda: _ok(f"{origin}/received", verify=False), timeout=30, message="the push stand-in")
        sub = httpx.post(f"{origin}/subscribe", json={"applicationServerKey": public.group(1)}, verify=False).json()
        httpx.put(f"{base}/api/v1/recipients/ada", headers=auth, json={"email": "ada@example.com"})
        assert httpx.post(f"{base}/api/v1/recipients/ada/webpush", headers=auth, json=sub).status_code == 201
        sent = httpx.post(f"{base}/api/v1/messages", headers=auth, json={
            "channel": "push", "recipient_id": "ada", "subject": "Hello", "body": "from make run"}).json()["id"]
        wait_for(lambda: httpx.get(f"{base}/api/v1/messages/{sent}", headers=auth).json()["status"] == "sent",
                 timeout=60, interval=0.3, message="the push to be sent")
        got = httpx.get(f"{origin}/received", verify=False).json()
        assert '"body":"from make run"' in got[-1]["payload"]
        wait_for(lambda: "webpush | webpush ->" in system.text, timeout=10, message="the stand-in to print it")
    finally:
        assert system.stop() == 0, system.text[-3000:]


def _ok(url: str, **kwargs) -> bool:
    try:
        return httpx.get(url, timeout=2, **kwargs).status_code == 200
    except httpx.HTTPError:
        return False

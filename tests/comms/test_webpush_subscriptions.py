"""Browser Web Push subscriptions: register/unregister (API key and inbox token), the VAPID key, and
every validation (key lengths, base64url, https-only, SSRF) as a typed JSON error."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rest_framework.test import APIClient

from comms import webpush
from comms.models import Device
from tests.webpush_support import push_service, vapid  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def point() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@pytest.fixture
def ada(admin_api):
    admin_api.put("/api/v1/recipients/ada", {"email": "ada@example.com"}, format="json")


def test_register_move_and_unregister(admin_api, ada, push_service, vapid):
    admin_api.put("/api/v1/recipients/bob", {"email": "bob@example.com"}, format="json")
    sub = push_service.subscribe(vapid)
    first = admin_api.post("/api/v1/recipients/ada/webpush", {**sub, "app_id": "shop-web"}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["platform"] == "webpush" and first.json()["token"] == sub["endpoint"]
    device = Device.objects.get(token=sub["endpoint"])
    # The auth secret is stored encrypted, never in clear (a database dump alone does not reveal it).
    assert sub["keys"]["auth"] not in device.keys_encrypted and sub["keys"]["p256dh"] not in device.keys_encrypted
    assert webpush.keys_decrypt(device.keys_encrypted) == sub["keys"]
    moved = admin_api.post("/api/v1/recipients/bob/webpush", sub, format="json")
    assert moved.status_code == 200 and Device.objects.get(token=sub["endpoint"]).recipient.external_id == "bob"
    gone = admin_api.post("/api/v1/webpush/unsubscribe", {"endpoint": sub["endpoint"]}, format="json")
    assert gone.json() == {"unregistered": True}
    again = admin_api.post("/api/v1/webpush/unsubscribe", {"endpoint": sub["endpoint"]}, format="json")
    assert (again.status_code, again.json()["code"]) == (404, "COMMS_NOT_FOUND")


def test_browser_registers_itself_with_an_inbox_token(admin_api, ada, push_service, vapid):
    admin_api.put("/api/v1/recipients/eve", {"email": "eve@example.com"}, format="json")
    token = admin_api.post("/api/v1/inbox-tokens", {"recipient_id": "ada"}, format="json").json()["token"]
    eve_token = admin_api.post("/api/v1/inbox-tokens", {"recipient_id": "eve"}, format="json").json()["token"]
    browser, eve = APIClient(), APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Inbox {token}")
    eve.credentials(HTTP_AUTHORIZATION=f"Inbox {eve_token}")
    sub = push_service.subscribe(vapid)
    created = browser.post("/api/v1/inbox/webpush", sub, format="json")
    assert created.status_code == 201, created.content
    assert Device.objects.get(token=sub["endpoint"]).recipient.external_id == "ada"
    # Another user's token cannot remove ada's browser.
    assert eve.delete("/api/v1/inbox/webpush", {"endpoint": sub["endpoint"]}, format="json").status_code == 404
    assert browser.delete("/api/v1/inbox/webpush", {"endpoint": sub["endpoint"]}, format="json").json() == {
        "unregistered": True}
    anonymous = APIClient().post("/api/v1/inbox/webpush", sub, format="json")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "COMMS_UNAUTHENTICATED")


def test_vapid_public_key_endpoint(client, settings, tmp_path):
    settings.COMMS_WEBPUSH = {**settings.COMMS_WEBPUSH, "vapid_file": str(tmp_path / "none.json")}
    missing = client.get("/api/v1/webpush/vapid-public-key")
    assert (missing.status_code, missing.json()["code"]) == (503, "COMMS_WEBPUSH_UNAVAILABLE")
    public, _ = webpush.vapid_generate()
    answer = client.get("/api/v1/webpush/vapid-public-key").json()
    assert answer == {"public_key": public} and len(webpush.b64url_decode(public)) == 65


GOOD_P256DH, GOOD_AUTH = b64(point()), b64(os.urandom(16))


@pytest.mark.parametrize("body, field", [
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": b64(point()[:64]), "auth": GOOD_AUTH}}, "keys.p256dh"),
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": b64(point() + b"\0"), "auth": GOOD_AUTH}}, "keys.p256dh"),
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": b64(b"\x02" + point()[1:33]), "auth": GOOD_AUTH}},
     "keys.p256dh"),  # a compressed point: browsers send the uncompressed 65-byte form
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": b64(b"\x04" + b"\x01" * 64), "auth": GOOD_AUTH}},
     "keys.p256dh"),  # 65 bytes but not on the curve
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": GOOD_P256DH.replace("-", "+") + "+/", "auth": GOOD_AUTH}},
     "keys.p256dh"),  # standard base64, not base64url
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": GOOD_P256DH, "auth": b64(os.urandom(15))}}, "keys.auth"),
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": GOOD_P256DH, "auth": b64(os.urandom(17))}}, "keys.auth"),
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": GOOD_P256DH, "auth": "not base64!"}}, "keys.auth"),
    ({"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": GOOD_P256DH, "auth": 12}}, "keys.auth"),
    ({"endpoint": "http://127.0.0.1/x", "keys": {"p256dh": GOOD_P256DH, "auth": GOOD_AUTH}}, "endpoint"),
    ({"endpoint": "ftp://push.example.com/x", "keys": {"p256dh": GOOD_P256DH, "auth": GOOD_AUTH}}, "endpoint"),
    ({"endpoint": "https://exa mple.com/x", "keys": {"p256dh": GOOD_P256DH, "auth": GOOD_AUTH}}, "endpoint"),
    ({"endpoint": "https://push.example.com:99999/x", "keys": {"p256dh": GOOD_P256DH, "auth": GOOD_AUTH}}, "endpoint"),
    ({"keys": {"p256dh": GOOD_P256DH, "auth": GOOD_AUTH}}, "endpoint"),
    ({"endpoint": "https://127.0.0.1/x"}, "keys"),
    ({"endpoint": "https://127.0.0.1/x", "keys": "p256dh"}, "keys"),
])
def test_malformed_subscriptions_are_400_naming_the_field(settings, admin_api, ada, body, field):
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # only the shape is wrong in these
    response = admin_api.post("/api/v1/recipients/ada/webpush", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "COMMS_INVALID_SUBSCRIPTION" and response.json()["details"]["field"] == field
    assert not Device.objects.exists()


@pytest.mark.parametrize("endpoint", ["https://127.0.0.1/push/1", "https://10.1.2.3/push/1", "https://[::1]/push",
                                      "https://169.254.169.254/latest/meta-data", "https://localhost/push",
                                      "https://[::ffff:192.168.0.1]/push", "https://0.0.0.0/push"])
def test_endpoints_on_private_addresses_are_refused_like_webhooks(admin_api, ada, endpoint):
    body = {"endpoint": endpoint, "keys": {"p256dh": GOOD_P256DH, "auth": GOOD_AUTH}}
    response = admin_api.post("/api/v1/recipients/ada/webpush", body, format="json")
    assert (response.status_code, response.json()["code"]) == (422, "COMMS_UNSAFE_DESTINATION"), response.content
    assert not Device.objects.exists()


def test_other_bad_bodies(admin_api, ada, push_service, vapid):
    sub = push_service.subscribe(vapid)
    unknown = admin_api.post("/api/v1/recipients/ada/webpush", {**sub, "extra": 1}, format="json")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "COMMS_UNKNOWN_FIELD")
    listed = admin_api.post("/api/v1/recipients/ada/webpush", [sub], format="json")
    assert (listed.status_code, listed.json()["code"]) == (400, "COMMS_INVALID_SUBSCRIPTION")
    nobody = admin_api.post("/api/v1/recipients/ghost/webpush", sub, format="json")
    assert (nobody.status_code, nobody.json()["code"]) == (422, "COMMS_RECIPIENT_NOT_FOUND")
    app = admin_api.post("/api/v1/recipients/ada/webpush", {**sub, "app_id": 5}, format="json")
    assert (app.status_code, app.json()["code"]) == (400, "COMMS_VALIDATION_ERROR")
    no_endpoint = admin_api.post("/api/v1/webpush/unsubscribe", {}, format="json")
    assert (no_endpoint.status_code, no_endpoint.json()["code"]) == (400, "COMMS_VALIDATION_ERROR")
    # A Web Push subscription needs its keys: the token-only device API does not take it.
    token_only = admin_api.post("/api/v1/recipients/ada/devices", {"token": "abcdefgh1234", "platform": "webpush"},
                                format="json")
    assert token_only.status_code == 400


def test_vapid_keys_command_creates_once_and_rotates(tmp_path):
    env = {**os.environ, "WEBPUSH_VAPID_FILE": str(tmp_path / "vapid.json")}

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", "comms_vapid_keys", *args], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True).stdout

    first = run()
    assert "created" in first
    public = first.rsplit("public key: ", 1)[1].strip()
    assert "kept" in run() and run().rsplit("public key: ", 1)[1].strip() == public
    stored = json.loads((tmp_path / "vapid.json").read_text())
    assert stored["public_key"] == public and (tmp_path / "vapid.json").stat().st_mode & 0o777 == 0o600
    assert "rotated" in run("--rotate")
    assert json.loads((tmp_path / "vapid.json").read_text())["public_key"] != public
    assert "re-encrypted" in run("--reencrypt")

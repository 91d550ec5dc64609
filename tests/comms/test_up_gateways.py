"""`make run` starts the Bandwidth, Vonage and Postal stand-ins (unless real credentials are configured),
points the providers at them, gives their callbacks our webhook URLs and secrets, and says so in the banner."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx

from comms.devserver.embedded import free_port
from comms.devserver.up_standins import standin_children


def test_gateway_standins_are_configured_and_printed(tmp_path):
    env = {"COMMS_PUBLIC_URL": "http://127.0.0.1:8123"}
    children, lines = standin_children(tmp_path, env)
    assert {"bandwidth", "vonage", "postal"} <= set(children)
    assert "http://127.0.0.1:8123/webhooks/bandwidth" in children["bandwidth"]["cmd"]
    assert env["COMMS_BANDWIDTH_WEBHOOK_AUTH"] in children["bandwidth"]["cmd"]  # what the callbacks carry
    assert env["VONAGE_SIGNATURE_SECRET"] in children["vonage"]["cmd"]
    assert "http://127.0.0.1:8123/webhooks/postal" in children["postal"]["cmd"] and env["COMMS_POSTAL_WEBHOOK_KEYS"]
    assert json.loads(env["COMMS_CHANNEL_FAILOVER"]) == {"sms": ["bandwidth", "vonage"], "email": ["postal"]}
    text = "\n".join(lines)
    assert "Bandwidth stand-in" in text and "Vonage stand-in" in text and "Postal stand-in" in text
    # A second run keeps the secrets (and the Postal key) so configured webhooks stay valid.
    again = {"COMMS_PUBLIC_URL": "http://127.0.0.1:8123"}
    standin_children(tmp_path, again)
    for name in ("COMMS_BANDWIDTH_WEBHOOK_AUTH", "VONAGE_SIGNATURE_SECRET", "COMMS_POSTAL_WEBHOOK_KEYS", "POSTAL_API_KEY"):
        assert again[name] == env[name]
    # Real credentials: no stand-in for that vendor, and the user's own failover setting is kept.
    real = {"BANDWIDTH_ACCOUNT_ID": "1", "VONAGE_API_KEY": "k", "POSTAL_API_URL": "https://postal.example.com/",
            "COMMS_CHANNEL_FAILOVER": "{}"}
    children, lines = standin_children(tmp_path, real)
    assert not {"bandwidth", "vonage", "postal"} & set(children) and real["COMMS_CHANNEL_FAILOVER"] == "{}"


def test_the_postal_standin_process_answers_the_send_api(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "comms.devserver.standins.postal", "--port", str(port),
                             "--api-key", "k", "--key-file", str(tmp_path / "key.pem")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert "Postal stand-in on" in proc.stdout.readline()
        deadline = time.time() + 10
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/send/message", headers={"X-Server-API-Key": "k"},
                                    json={"to": ["a@example.com"], "from": "b@example.com", "subject": "s"}).json()
                break
            except httpx.HTTPError:
                assert time.time() < deadline
                time.sleep(0.1)
        assert answer["status"] == "success" and "a@example.com" in answer["data"]["messages"]
        bad = httpx.post(f"http://127.0.0.1:{port}/api/v1/send/message", headers={"X-Server-API-Key": "x"},
                         json={}).json()
        assert bad["data"]["code"] == "InvalidServerAPIKey"
    finally:
        proc.terminate()
        proc.wait(10)

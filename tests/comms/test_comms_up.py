"""`make run` as a user meets it: one process brings everything up, prints how to use it, stops cleanly."""

from __future__ import annotations

import json
import mailbox
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from comms.devserver.embedded import free_port
from tests.conftest import ROOT, wait_for


class ComposedSystem:
    def __init__(self, var: Path, web_port: int, smtp_port: int):
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "EMAIL_PORT",
                                                                    "EMAIL_HOST")}
        env.update(COMMS_VAR_DIR=str(var), COMMS_WEB_WORKERS="1", COMMS_URGENT_CONCURRENCY="1",
                   COMMS_BULK_CONCURRENCY="1", COMMS_HOUSEKEEPING_SECONDS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "comms_up", "--web-port", str(web_port), "--smtp-port", str(smtp_port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        return self.proc.wait(60)


@pytest.mark.slow
def test_make_run_brings_everything_up_and_down(tmp_path):
    var = tmp_path / "var"
    web_port, smtp_port = free_port(), free_port()
    system = ComposedSystem(var, web_port, smtp_port)
    try:
        wait_for(lambda: "comms is up" in system.text, timeout=120, interval=0.2, message="the banner")
        banner = system.text
        key = re.search(r"API key\s+(ck_\S+)", banner).group(1)
        password = re.search(r"password: (\S+)", banner).group(1)
        assert f"http://127.0.0.1:{web_port}/admin/" in banner

        base = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: _ok(f"{base}/api/v1/health"), timeout=60, message="web")
        response = httpx.post(f"{base}/api/v1/messages", headers={"Authorization": f"Bearer {key}"},
                              json={"channel": "email", "to": "ada@example.com", "subject": "Up", "body": "Hi"})
        assert response.status_code == 202, response.text
        message_id = response.json()["id"]

        def sent():
            r = httpx.get(f"{base}/api/v1/messages/{message_id}", headers={"Authorization": f"Bearer {key}"})
            return r.json()["status"] == "sent"

        wait_for(sent, timeout=30, interval=0.2, message="the worker to send it")
        mails = list(mailbox.Maildir(str(var / "mail")))
        assert [m["X-Comms-Message-Id"] for m in mails] == [message_id]
        _sms_and_push_work_offline(base, key, system)

        admin = httpx.Client(base_url=base)
        login = admin.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        done = admin.post("/admin/login/?next=/admin/", data={"username": "admin", "password": password,
                                                              "csrfmiddlewaretoken": token},
                          headers={"Referer": f"{base}/admin/login/"}, follow_redirects=True)
        assert "Site administration" in done.text
    finally:
        code = system.stop()
    assert code == 0, system.text[-3000:]
    assert "comms_up: stopped." in system.text
    assert not (var / "embedded.env").exists()
    assert not _ok(f"http://127.0.0.1:{web_port}/healthz")

    # A second start reuses the data and prints the same credentials.
    creds = json.loads((var / "credentials.json").read_text())
    again = ComposedSystem(var, web_port, smtp_port)
    try:
        wait_for(lambda: "comms is up" in again.text, timeout=120, interval=0.2, message="the second banner")
        assert creds["api_key"] in again.text and creds["admin_password"] in again.text
        wait_for(lambda: _ok(f"http://127.0.0.1:{web_port}/api/v1/health"), timeout=60, message="web again")
        r = httpx.get(f"http://127.0.0.1:{web_port}/api/v1/messages/{message_id}",
                      headers={"Authorization": f"Bearer {creds['api_key']}"})
        assert r.status_code == 200 and r.json()["status"] == "sent"
    finally:
        assert again.stop() == 0


def _sms_and_push_work_offline(base: str, key: str, system: ComposedSystem) -> None:
    """SMS and push go through the real SDKs into the Twilio and FCM stand-ins `make run` starts."""
    auth = {"Authorization": f"Bearer {key}"}
    assert "Twilio stand-in http://127.0.0.1:" in system.text and "FCM stand-in http://127.0.0.1:" in system.text
    assert re.search(r"Twilio token   [0-9a-f]{32} ", system.text)
    assert httpx.put(f"{base}/api/v1/recipients/ada", headers=auth, json={"phone": "+14155550123"}).status_code in (200, 201)
    device = httpx.post(f"{base}/api/v1/recipients/ada/devices", headers=auth,
                        json={"token": "make-run-device-0001", "platform": "android"})
    assert device.status_code == 201, device.text
    ids = []
    for payload in ({"channel": "sms", "recipient_id": "ada", "body": "Offline SMS"},
                    {"channel": "push", "recipient_id": "ada", "subject": "Offline", "body": "push works"}):
        response = httpx.post(f"{base}/api/v1/messages", headers=auth, json=payload)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    call = httpx.post(f"{base}/api/v1/messages", headers=auth,
                      json={"channel": "voice", "recipient_id": "ada", "body": "Offline call"})
    assert call.status_code == 202, call.text

    def status(i: str) -> str:
        return httpx.get(f"{base}/api/v1/messages/{i}", headers=auth).json()["status"]

    def all_sent():
        # The Twilio stand-in's signed status callbacks may already have moved the SMS on to delivered.
        return all(status(i) in ("sent", "delivered") for i in ids)

    wait_for(all_sent, timeout=60, interval=0.3, message="SMS and push to be sent")
    wait_for(lambda: "'Offline SMS'" in system.text and "'push works'" in system.text, timeout=10,
             message="the stand-ins to print them")
    # SMS and the call are delivered by the stand-in's callbacks through /webhooks/twilio/*.
    wait_for(lambda: status(ids[0]) == "delivered" and status(call.json()["id"]) == "delivered", timeout=60,
             interval=0.3, message="the SMS and the call to be delivered by Twilio status callbacks")


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_banner_names_the_twilio_standin_token_that_checks_inbound_webhooks(tmp_path):
    """Under `make run` inbound Twilio webhooks are verified with the stand-in's generated token: the
    banner prints it (and where it is kept) so a user can sign a test request (issue 13 item 15)."""
    from comms.devserver.up_standins import ACCOUNT_SID, standin_children

    env: dict[str, str] = {}
    children, lines = standin_children(tmp_path, env)
    token = (tmp_path / "standins" / "twilio-auth-token").read_text().strip()
    assert len(token) == 32 and env["TWILIO_AUTH_TOKEN"] == token  # what the web tier checks signatures with
    line = next(x for x in lines if "Twilio token" in x)
    assert token in line and ACCOUNT_SID in line and str(tmp_path / "standins" / "twilio-auth-token") in line
    assert "/webhooks/twilio/" in line
    assert token in children["twilio"]["cmd"]
    assert any(x.strip().startswith("voice          Twilio stand-in") for x in lines)
    assert env["TWILIO_STATUS_CALLBACK"].endswith("/webhooks/twilio/status")  # SMS callbacks come back to us
    # A second `make run` keeps the same token, so a signature computed once stays valid.
    again: dict[str, str] = {}
    _, lines_again = standin_children(tmp_path, again)
    assert again["TWILIO_AUTH_TOKEN"] == token and any(token in x for x in lines_again)
    # With a real Twilio account configured there is no stand-in and no stand-in token line.
    _, real = standin_children(tmp_path, {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32})
    assert not any("Twilio token" in x for x in real)

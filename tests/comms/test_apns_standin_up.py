"""`make run` starts the APNs stand-in and points the APNs provider at it (HTTP/2 + TLS, its CA)."""

from __future__ import annotations

import subprocess
import time
import uuid

from django.utils import timezone

from comms.devserver.up_standins import standin_children
from delivery.models import Message
from delivery.providers.apns import ApnsProvider
from delivery.providers.base import Content


def test_comms_up_runs_the_apns_standin_and_the_provider_reaches_it(tmp_path):
    env: dict[str, str] = {}
    children, lines = standin_children(tmp_path, env)
    line = next(x for x in lines if "APNs stand-in" in x)
    assert env["APNS_ENDPOINT"] in line and "COMMS_PUSH_IOS_VIA=apns" in line  # iOS stays on FCM by default
    assert (tmp_path / "standins" / "apns-key.p8").exists() and env["APNS_CA_FILE"].endswith("apns-ca.pem")
    proc = subprocess.Popen(children["apns"]["cmd"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "APNs stand-in on https://127.0.0.1:" in proc.stdout.readline()
        provider = ApnsProvider({"team_id": env["APNS_TEAM_ID"], "key_id": env["APNS_KEY_ID"],
                                 "private_key_file": env["APNS_PRIVATE_KEY_FILE"], "topic": env["APNS_TOPIC"],
                                 "endpoint": env["APNS_ENDPOINT"], "ca_file": env["APNS_CA_FILE"]})
        assert ApnsProvider.config_problems(provider.config) == []
        message = Message(id=uuid.uuid4(), priority=1, metadata={}, created_at=timezone.now())
        token = "c3" * 32
        result = provider.send_prepared(message, Content(subject="Hi", body="from make run"),
                                        {"targets": [(token, "ios", None)]})
        assert result.ok, result
        assert f"push -> apns …{token[-10:]} (alert): 'Hi' 'from make run'" in proc.stdout.readline()
        provider.close()
        # A second start keeps the signing key (registered keys survive restarts) and makes new TLS files.
        key = (tmp_path / "standins" / "apns-key.p8").read_text()
        standin_children(tmp_path, {})
        assert (tmp_path / "standins" / "apns-key.p8").read_text() == key
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # With a real APNs key configured there is no stand-in.
    children, lines = standin_children(tmp_path, {"APNS_KEY_ID": "ABCDE12345"})
    assert "apns" not in children and not any("APNs stand-in" in x for x in lines)

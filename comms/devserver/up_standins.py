"""Provider stand-ins for `make run`: SMS (Twilio API) and push (FCM HTTP v1, APNs) that work offline.

Unless real credentials are configured (TWILIO_ACCOUNT_SID / FCM_SERVICE_ACCOUNT_*), or
COMMS_STANDINS=0, `comms_up` runs the loopback stand-ins of comms/devserver/standins (the product's own
code: tests import them from there) as supervised children and points the Twilio SDK and firebase-admin
at them, so SMS and push go through the real SDKs and the real pipeline and show up in the `twilio`/`fcm` lines of the output.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

PY = sys.executable
ACCOUNT_SID = "AC" + "0" * 32  # Twilio's test-credential shape; never a real account


def standin_children(var: Path, env: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """(supervisor specs, banner lines); sets the provider variables in `env` for the other children."""
    from comms.devserver.embedded import free_port

    if env.get("COMMS_STANDINS", "1").lower() in ("0", "false", "no"):
        return {}, []
    children: dict[str, dict] = {}
    lines: list[str] = []
    folder = var / "standins"
    folder.mkdir(parents=True, exist_ok=True)
    if not env.get("TWILIO_ACCOUNT_SID") and env.get("COMMS_SMS_PROVIDER", "") != "sns":
        port = int(env.get("COMMS_TWILIO_STANDIN_PORT") or free_port())
        token_file = folder / "twilio-auth-token"
        if not token_file.exists():
            token_file.write_text(secrets.token_hex(16))
            token_file.chmod(0o600)
        env.update({"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": token_file.read_text().strip(),
                    "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_BASE_URL": f"http://127.0.0.1:{port}"})
        children["twilio"] = {"cmd": [PY, "-m", "comms.devserver.standins.twilio", "--port", str(port),
                                      "--account-sid", ACCOUNT_SID, "--auth-token", env["TWILIO_AUTH_TOKEN"]]}
        lines.append(f"  SMS            Twilio stand-in http://127.0.0.1:{port} (messages print as 'twilio |')")
        # Inbound Twilio webhooks (/webhooks/twilio/*) are checked against this token (X-Twilio-Signature,
        # https://www.twilio.com/docs/usage/webhooks/webhooks-security): whoever signs a test request needs it.
        lines.append(f"  Twilio token   {env['TWILIO_AUTH_TOKEN']} (account {ACCOUNT_SID}; in {token_file}): "
                     "signs and checks /webhooks/twilio/*")
    if not (env.get("FCM_SERVICE_ACCOUNT_JSON") or env.get("FCM_SERVICE_ACCOUNT_FILE")):
        port = int(env.get("COMMS_FCM_STANDIN_PORT") or free_port())
        credential = folder / "fcm-service-account.json"
        _service_account(credential, token_uri=f"http://127.0.0.1:{port}/token")
        env.update({"FCM_SERVICE_ACCOUNT_FILE": str(credential), "FCM_ENDPOINT": f"http://127.0.0.1:{port}"})
        children["fcm"] = {"cmd": [PY, "-m", "comms.devserver.standins.fcm", "--port", str(port),
                                   "--service-account", str(credential)]}
        lines.append(f"  push           FCM stand-in http://127.0.0.1:{port} (pushes print as 'fcm |')")
    if not env.get("APNS_KEY_ID"):
        apns_children, apns_lines = _apns_standin(folder, env)
        children.update(apns_children)
        lines += apns_lines
    return children, lines


def _apns_standin(folder: Path, env: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """The APNs stand-in (HTTP/2 + TLS): a .p8-shaped signing key kept in var/, a fresh CA and server
    certificate made now (before the workers start, so they trust it from their first push)."""
    from comms.devserver.embedded import free_port
    from comms.devserver.standins.apns import signing_key, tls_files

    port = int(env.get("COMMS_APNS_STANDIN_PORT") or free_port())
    key_file = folder / "apns-key.p8"
    if not key_file.exists():
        key_file.write_text(signing_key())
        key_file.chmod(0o600)
    ca_file, _cert, _key = tls_files(folder)
    env.update({"APNS_TEAM_ID": "STANDIN001", "APNS_KEY_ID": "STANDINKEY", "APNS_PRIVATE_KEY_FILE": str(key_file),
                "APNS_TOPIC": env.get("APNS_TOPIC") or "com.example.comms", "APNS_CA_FILE": str(ca_file),
                "APNS_ENDPOINT": f"https://127.0.0.1:{port}"})
    cmd = [PY, "-m", "comms.devserver.standins.apns", "--port", str(port), "--folder", str(folder),
           "--key-file", str(key_file), "--key-id", env["APNS_KEY_ID"], "--team-id", env["APNS_TEAM_ID"]]
    if env.get("COMMS_APNS_STANDIN_LATENCY_MS"):
        cmd += ["--latency-ms", env["COMMS_APNS_STANDIN_LATENCY_MS"]]
    via = env.get("COMMS_PUSH_IOS_VIA", "fcm")
    return {"apns": {"cmd": cmd}}, [
        f"  push (iOS)     APNs stand-in https://127.0.0.1:{port} (HTTP/2 + TLS; pushes print as 'apns |'); "
        f"iOS devices go to {'APNs' if via == 'apns' else 'FCM (COMMS_PUSH_IOS_VIA=apns sends them here)'}"]


def _service_account(path: Path, *, token_uri: str) -> None:
    """A local service account (fresh RSA key) whose token_uri is the stand-in's current port."""
    from comms.devserver.standins.fcm import service_account

    info = json.loads(path.read_text()) if path.exists() else service_account(token_uri=token_uri)
    info["token_uri"] = token_uri
    path.write_text(json.dumps(info))
    os.chmod(path, 0o600)

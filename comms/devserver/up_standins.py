"""Provider stand-ins for `make run`: SMS and voice (Twilio API), push (FCM HTTP v1, APNs) and Web Push, offline.

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
        # The stand-in sends Twilio's signed status callbacks back to our webhooks (SMS and calls).
        public = env.get("COMMS_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
        env.setdefault("TWILIO_STATUS_CALLBACK", f"{public}/webhooks/twilio/status")
        lines.append(f"  voice          Twilio stand-in http://127.0.0.1:{port} (calls print as 'twilio | CALL'; "
                     "status callbacks to /webhooks/twilio/status and /webhooks/twilio/voice)")
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
    if not env.get("WEBPUSH_ENABLED"):
        children.update(_webpush_standin(folder, env, lines))
    if not env.get("APNS_KEY_ID"):
        apns_children, apns_lines = _apns_standin(folder, env)
        children.update(apns_children)
        lines += apns_lines
    more_children, more_lines = _gateway_children(folder, env)
    children.update(more_children)
    children.update(_llm_standin(env, more_lines))
    return children, lines + more_lines


def _secret(folder: Path, name: str) -> str:
    """A development secret kept in var/standins (so restarts keep the webhooks' configuration valid)."""
    path = folder / name
    if not path.exists():
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def _gateway_children(folder: Path, env: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """Bandwidth, Vonage (SMS) and Postal (email) stand-ins, unless real credentials are configured. They
    post their receipts to our webhooks, authenticated or signed as the vendors do; by default they are
    the failover chain after Twilio and SMTP (COMMS_CHANNEL_FAILOVER), or the primary with
    COMMS_SMS_PROVIDER=bandwidth|vonage / COMMS_EMAIL_PROVIDER=postal."""
    from comms.devserver.embedded import free_port

    children: dict[str, dict] = {}
    lines: list[str] = []
    public = env.get("COMMS_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    chain: dict[str, list[str]] = {"sms": [], "email": []}
    if not env.get("BANDWIDTH_ACCOUNT_ID"):
        port = int(env.get("COMMS_BANDWIDTH_STANDIN_PORT") or free_port())
        auth = "bandwidth:" + _secret(folder, "bandwidth-callback-password")
        env.update({"BANDWIDTH_ACCOUNT_ID": "9900000", "BANDWIDTH_USERNAME": "comms-dev",
                    "BANDWIDTH_PASSWORD": _secret(folder, "bandwidth-api-password"),
                    "BANDWIDTH_APPLICATION_ID": "comms-dev-app", "BANDWIDTH_FROM_NUMBER": "+15005550008",
                    "BANDWIDTH_BASE_URL": f"http://127.0.0.1:{port}", "COMMS_BANDWIDTH_WEBHOOK_AUTH": auth})
        children["bandwidth"] = {"cmd": [PY, "-m", "comms.devserver.standins.bandwidth", "--port", str(port),
                                         "--account-id", "9900000", "--username", "comms-dev",
                                         "--password", env["BANDWIDTH_PASSWORD"], "--application-id", "comms-dev-app",
                                         "--callback-url", f"{public}/webhooks/bandwidth", "--callback-auth", auth]}
        lines.append(f"  SMS            Bandwidth stand-in http://127.0.0.1:{port} (receipts to /webhooks/bandwidth, "
                     f"basic auth {auth})")
        chain["sms"].append("bandwidth")
    if not env.get("VONAGE_API_KEY"):
        port = int(env.get("COMMS_VONAGE_STANDIN_PORT") or free_port())
        env.update({"VONAGE_API_KEY": "commsdev", "VONAGE_API_SECRET": _secret(folder, "vonage-api-secret"),
                    "VONAGE_SIGNATURE_SECRET": _secret(folder, "vonage-signature-secret"),
                    "VONAGE_SIGNATURE_METHOD": "sha256", "VONAGE_FROM_NUMBER": "15005550009",
                    "VONAGE_BASE_URL": f"http://127.0.0.1:{port}"})
        children["vonage"] = {"cmd": [PY, "-m", "comms.devserver.standins.vonage", "--port", str(port),
                                      "--api-key", "commsdev", "--api-secret", env["VONAGE_API_SECRET"],
                                      "--signature-secret", env["VONAGE_SIGNATURE_SECRET"], "--signature-method",
                                      "sha256", "--dlr-url", f"{public}/webhooks/vonage/dlr",
                                      "--inbound-url", f"{public}/webhooks/vonage/inbound"]}
        lines.append(f"  SMS            Vonage stand-in http://127.0.0.1:{port} (signed DLRs to /webhooks/vonage/dlr, "
                     f"signature secret {env['VONAGE_SIGNATURE_SECRET']}, sha256)")
        chain["sms"].append("vonage")
    if not env.get("POSTAL_API_URL"):
        from comms.devserver.standins.postal import load_key, public_key_b64

        port = int(env.get("COMMS_POSTAL_STANDIN_PORT") or free_port())
        key_file = folder / "postal-signing-key.pem"
        env.update({"POSTAL_API_URL": f"http://127.0.0.1:{port}/", "POSTAL_API_KEY": _secret(folder, "postal-api-key"),
                    "COMMS_POSTAL_WEBHOOK_KEYS": public_key_b64(load_key(str(key_file)))})
        children["postal"] = {"cmd": [PY, "-m", "comms.devserver.standins.postal", "--port", str(port),
                                      "--api-key", env["POSTAL_API_KEY"], "--key-file", str(key_file),
                                      "--webhook-url", f"{public}/webhooks/postal"]}
        lines.append(f"  email          Postal stand-in http://127.0.0.1:{port} (signed webhooks to /webhooks/postal)")
        chain["email"].append("postal")
    if not env.get("COMMS_CHANNEL_FAILOVER") and any(chain.values()):
        env["COMMS_CHANNEL_FAILOVER"] = json.dumps({k: v for k, v in chain.items() if v})
        lines.append(f"  failover       {env['COMMS_CHANNEL_FAILOVER']} (COMMS_CHANNEL_FAILOVER)")
    return children, lines


def _webpush_standin(folder: Path, env: dict[str, str], lines: list[str]) -> dict[str, dict]:
    """The Web Push service stand-in (HTTPS on loopback; it decrypts and prints what it gets). Web Push is
    switched on, the sender trusts the stand-in's certificate next to the public CAs (so real push
    services still verify), and loopback is allowed as an outbound destination for it."""
    import certifi

    from comms.devserver.embedded import free_port
    from comms.devserver.standins.webpush import self_signed

    port = int(env.get("COMMS_WEBPUSH_STANDIN_PORT") or free_port())
    cert, _ = self_signed(folder)
    bundle = folder / "webpush-ca.pem"
    bundle.write_text(Path(certifi.where()).read_text() + "\n" + cert.read_text())
    env.update({"WEBPUSH_ENABLED": "1", "WEBPUSH_CA_BUNDLE": str(bundle)})
    if not env.get("COMMS_OUTBOUND_ALLOWED_NETWORKS"):
        env["COMMS_OUTBOUND_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    origin = f"https://127.0.0.1:{port}"
    lines.append(f"  web push       push service stand-in {origin} (decrypted pushes print as 'webpush |'; "
                 f"a test subscription: curl -sk -X POST {origin}/subscribe "
                 "-d '{\"applicationServerKey\":\"<VAPID public key>\"}')")
    return {"webpush": {"cmd": [PY, "-m", "comms.devserver.standins.webpush", "--port", str(port),
                                "--folder", str(folder)]}}


def webpush_keys(env: dict[str, str]) -> list[str]:
    """Create the VAPID key pair once (var/vapid.json unless WEBPUSH_VAPID_FILE says otherwise) and name
    it in the banner; an existing pair is never replaced (that would orphan every subscription)."""
    import subprocess

    base = Path(__file__).resolve().parents[2]
    out = subprocess.run([PY, str(base / "manage.py"), "comms_vapid_keys"], env=env, cwd=base, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    public = out.rsplit("public key: ", 1)[-1].strip()
    where = out.splitlines()[0].rsplit(" in ", 1)[-1]
    return [f"  VAPID key      {public} (in {where}; GET /api/v1/webpush/vapid-public-key, "
            "browser kit: /webpush/subscribe)"]


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


def _llm_standin(env: dict[str, str], lines: list[str]) -> dict[str, dict]:
    """The chat-completions stand-in for the content assistants (deterministic, no model), unless a real
    endpoint is configured (COMMS_LLM_BASE_URL). It is on loopback, which the assistant's client allows."""
    from comms.devserver.embedded import free_port

    if env.get("COMMS_LLM_BASE_URL"):
        return {}
    port = int(env.get("COMMS_LLM_STANDIN_PORT") or free_port())
    env.update({"COMMS_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1", "COMMS_LLM_MODEL": "standin-1"})
    lines.append(f"  assistant      chat-completions stand-in http://127.0.0.1:{port}/v1 (subject ideas and "
                 "[locale]-marked draft translations; set COMMS_LLM_BASE_URL for a real model)")
    return {"llm": {"cmd": [PY, "-m", "comms.devserver.standins.llm", "--port", str(port)]}}

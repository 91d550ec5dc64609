"""Provider stand-ins for `make run`: SMS and voice (Twilio API), push (FCM HTTP v1) and Web Push, offline.

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


def _service_account(path: Path, *, token_uri: str) -> None:
    """A local service account (fresh RSA key) whose token_uri is the stand-in's current port."""
    from comms.devserver.standins.fcm import service_account

    info = json.loads(path.read_text()) if path.exists() else service_account(token_uri=token_uri)
    info["token_uri"] = token_uri
    path.write_text(json.dumps(info))
    os.chmod(path, 0o600)

"""A loopback stand-in for FCM HTTP v1 and Google's OAuth2 token endpoint, enough for firebase-admin.

* ``POST /token``: the service-account JWT-bearer grant (RFC 7523). The assertion's RS256
  signature is checked against the service account's public key, like Google does, and a
  short-lived access token is issued.
* ``POST /v1/projects/{project}/messages:send``: needs that access token; answers
  ``{"name": "projects/{p}/messages/{id}"}`` and records the request, or fails as told.

Failures are scripted per device token (``fail(token, "unregistered", ...)``, consumed one per
request) or for every request (``outage = "503"``). Kinds: ``unregistered`` (404 UNREGISTERED),
``invalid_token`` (400 INVALID_ARGUMENT about the token), ``invalid_payload`` (400 INVALID_ARGUMENT
about something else), ``sender_mismatch`` (403), ``quota`` (429 QUOTA_EXCEEDED), ``500``, ``503``,
``timeout`` (the answer comes after ``timeout_seconds``) and ``apns_auth`` (401 THIRD_PARTY_AUTH_ERROR).

Run alone (``python -m comms.devserver.standins.fcm --port 8931 --service-account sa.json``) it serves
``make run``; ``service_account()`` writes a credential with a fresh RSA key for it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler

from comms.devserver.standins.httpserver import StandInServer
from pathlib import Path
from urllib.parse import parse_qs

_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_FAILURES = {
    "unregistered": (404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED", None),
    "invalid_token": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                      "INVALID_ARGUMENT", "message.token"),
    "invalid_payload": (400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'", "INVALID_ARGUMENT",
                        "message.data[0].value"),
    "sender_mismatch": (403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH", None),
    "quota": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for this device.", "QUOTA_EXCEEDED", None),
    "500": (500, "INTERNAL", "Internal error encountered.", "INTERNAL", None),
    "503": (503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE", None),
    "apns_auth": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR", None),
}


def service_account(*, token_uri: str, project_id: str = "comms-local") -> dict:
    """A service-account credential with a real, freshly generated RSA key (never a Google one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": project_id, "private_key_id": secrets.token_hex(20),
            "private_key": pem, "client_email": f"comms-push@{project_id}.iam.gserviceaccount.com",
            "client_id": str(secrets.randbelow(10**20)), "token_uri": token_uri}


def _public_pem(private_pem: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class FcmStandIn:
    def __init__(self, *, project_id: str = "comms-test", host: str = "127.0.0.1", port: int = 0,
                 latency_ms: float = 0.0):
        self.latency_ms = latency_ms
        self.project_id = project_id
        self.messages: deque[dict] = deque(maxlen=100_000)  # bounded: `make run` keeps it up for days
        self.token_requests = 0
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.outage: str | None = None
        self.timeout_seconds = 3.0
        self.on_message = None  # callable(message) for each accepted push (`make run` prints them)
        self._public_keys: dict[str, bytes] = {}
        self._access_tokens: set[str] = set()
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/token":
                    return self._reply(*stand_in._token(body))
                if stand_in.latency_ms:  # FCM answers a send in 50-150 ms (benchmarks set this)
                    time.sleep(stand_in.latency_ms / 1000)
                if self.path != f"/v1/projects/{stand_in.project_id}/messages:send":
                    return self._reply(404, _error(404, "NOT_FOUND", f"no route {self.path}"))
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in stand_in._access_tokens:
                    return self._reply(401, _error(401, "UNAUTHENTICATED", "Request had invalid credentials."))
                self._reply(*stand_in._send(json.loads(body)))

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = StandInServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    # -- control ------------------------------------------------------------------------------------
    def service_account(self) -> dict:
        """A credential this stand-in accepts (its token_uri points here)."""
        info = service_account(token_uri=f"{self.url}/token", project_id=self.project_id)
        self.trust(info)
        return info

    def trust(self, info: dict) -> None:
        self._public_keys[info["client_email"]] = _public_pem(info["private_key"])

    def fail(self, token: str, *kinds: str) -> None:
        self.failures[token].extend(kinds)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.failures.clear()
            self.outage = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- wire ---------------------------------------------------------------------------------------
    def _token(self, body: bytes) -> tuple[int, dict]:
        from google.auth import jwt

        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(form["assertion"], verify=False)
            key = self._public_keys.get(claims.get("iss", ""))
            if key is None:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: unknown client"}
            # google-auth always signs for Google's token endpoint, wherever token_uri points.
            jwt.decode(form["assertion"], certs=key, audience=["https://oauth2.googleapis.com/token",
                                                                f"{self.url}/token"])
        except (KeyError, ValueError) as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. {exc}"}
        token = "ya29." + secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens.add(token)
            self.token_requests += 1
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _send(self, request: dict) -> tuple[int, dict]:
        message = request.get("message") or {}
        token = message.get("token")
        if not token:
            return 400, _error(400, "INVALID_ARGUMENT", "Recipient of the message is not set.")
        with self._lock:
            queue = self.failures.get(token)
            kind = queue.pop(0) if queue else self.outage
        if kind == "timeout":
            time.sleep(self.timeout_seconds)
            kind = None  # FCM took it; the client just never heard back
        if kind:
            status, grpc, text, fcm_code, field = _FAILURES[kind]
            return status, _error(status, grpc, text, fcm_code=fcm_code, field=field)
        name = f"projects/{self.project_id}/messages/0:{time.time_ns()}%{secrets.token_hex(8)}"
        with self._lock:
            self.messages.append({**message, "name": name, "validate_only": bool(request.get("validate_only"))})
        if self.on_message:
            self.on_message({**message, "name": name})
        return 200, {"name": name}

    def by_token(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for message in list(self.messages):
            out[message["token"]].append(message)
        return out


def _error(status: int, grpc: str, text: str, *, fcm_code: str | None = None, field: str | None = None) -> dict:
    details: list[dict] = []
    if fcm_code:
        details.append({"@type": _FCM_ERROR, "errorCode": fcm_code})
    if field:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": field, "description": text}]})
    return {"error": {"code": status, "message": text, "status": grpc, "details": details}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="FCM HTTP v1 + OAuth2 token stand-in on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each send this much later")
    parser.add_argument("--service-account", required=True, help="JSON credential to trust (written if missing)")
    args = parser.parse_args(argv)
    stand_in = FcmStandIn(host=args.host, port=args.port, project_id="comms-local", latency_ms=args.latency_ms)
    path = Path(args.service_account)
    if path.exists():
        info = json.loads(path.read_text())
    else:
        info = service_account(token_uri=f"{stand_in.url}/token", project_id="comms-local")
        path.write_text(json.dumps(info))
        path.chmod(0o600)
    stand_in.project_id = info["project_id"]
    stand_in.trust(info)

    def show(message: dict) -> None:
        platform = next((p for p in ("android", "apns", "webpush") if p in message), "any")
        note = message.get("notification", {})
        print(f"push -> {platform} …{message['token'][-10:]}: {note.get('title', '')!r} {note.get('body', '')!r}",
              flush=True)

    stand_in.on_message = show
    print(f"FCM stand-in on {stand_in.url} (project {stand_in.project_id})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stand_in.close()


if __name__ == "__main__":
    main()

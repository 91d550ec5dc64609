"""A loopback stand-in Web Push service (RFC 8030) that plays the browser too: it decrypts what it receives.

A real push service never sees the plaintext; the browser holding the subscription's private key does.
This stand-in holds both halves, so a test proves the whole chain (pywebpush's RFC 8291 encryption,
our VAPID signature) and not only that a POST arrived:

* ``POST /subscribe`` ``{"applicationServerKey": "<base64url VAPID public key>"}`` — what
  ``PushManager.subscribe()`` does: a fresh P-256 key pair and 16-byte auth secret, answered as
  ``PushSubscription.toJSON()`` (``endpoint``, ``keys.p256dh``, ``keys.auth``).
* ``POST /push/{id}`` — the push resource. Checks, in a push service's order: unknown id ``404``,
  unsubscribed ``410``; ``Authorization: vapid t=<JWT>,k=<key>`` (RFC 8292 section 3): ES256 signature
  against ``k``, ``k`` equal to the key the subscription was made with, ``aud`` the endpoint's origin,
  ``exp`` in the future and at most 24 h ahead, ``sub`` present — else ``403`` (``401`` when missing);
  ``TTL`` present (RFC 8030 section 5.2) and ``Content-Encoding: aes128gcm`` — else ``400``; then the
  body is decrypted with the subscription's private key and auth secret (``http_ece``) — ``400`` if
  it does not decrypt — and ``201 Created`` with ``Location: /m/{id}``.
* ``DELETE /push/{id}`` — the browser unsubscribed: later pushes get ``410``.
* ``GET /received`` — every decrypted push (JSON), for tests and the dev banner.

HTTPS only, like every real push service (our endpoint check refuses ``http``): a self-signed
certificate for 127.0.0.1/localhost is written next to the key file, and the sender trusts it through
WEBPUSH_CA_BUNDLE. Failures can be scripted per subscription (``fail(id, 429)``, one per request).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import os
import secrets
import ssl
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import http_ece
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from comms.devserver.standins.httpserver import StandInServer


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 and localhost, made once in `folder`."""
    cert_path, key_path = folder / "webpush-standin.crt", folder / "webpush-standin.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "comms web push stand-in")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class WebPushStandIn:
    def __init__(self, *, folder: Path, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0):
        self.latency_ms = latency_ms
        self.subscriptions: dict[str, dict] = {}  # id -> {private, auth, server_key, gone}
        self.received: deque[dict] = deque(maxlen=100_000)
        self.refused: deque[dict] = deque(maxlen=10_000)
        self.failures: dict[str, list[int]] = defaultdict(list)
        self.on_message = None  # callable(record) per decrypted push (`make run` prints them)
        self._lock = threading.Lock()
        self.cert, key = self_signed(folder)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self):
                body = self._body()
                if self.path == "/subscribe":
                    try:
                        server_key = json.loads(body or b"{}")["applicationServerKey"]
                    except (ValueError, KeyError, TypeError):
                        return self._answer(400, {"error": "applicationServerKey required"})
                    return self._answer(201, stand_in.subscribe(server_key))
                if self.path.startswith("/push/"):
                    status, answer, headers = stand_in.push(self.path[6:], dict(self.headers), body)
                    return self._answer(status, answer, headers)
                return self._answer(404, {"error": "not found"})

            def do_DELETE(self):
                self._body()
                if self.path.startswith("/push/") and stand_in.unsubscribe(self.path[6:]):
                    return self._answer(204)
                return self._answer(404, {"error": "not found"})

            def do_GET(self):
                if self.path == "/received":
                    return self._answer(200, list(stand_in.received))
                return self._answer(404, {"error": "not found"})

        self.server = StandInServer((host, port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.origin = f"https://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # -- the browser's half --------------------------------------------------------------------------------
    def subscribe(self, server_key: str) -> dict:
        """A new subscription bound to `server_key`, as PushSubscription.toJSON()."""
        private = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self.subscriptions[sid] = {"private": private, "auth": auth, "server_key": server_key.rstrip("="),
                                       "gone": False}
        public = private.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self.origin}/push/{sid}", "expirationTime": None,
                "keys": {"p256dh": _b64(public), "auth": _b64(auth)}}

    def unsubscribe(self, sid: str) -> bool:
        sub = self.subscriptions.get(sid)
        if sub is None:
            return False
        sub["gone"] = True
        return True

    def fail(self, sid: str, *statuses: int) -> None:
        """Answer the next pushes to `sid` with these statuses (429, 500, 503, 413…), one per request."""
        self.failures[sid].extend(statuses)

    # -- the push service's half ---------------------------------------------------------------------------
    def _refuse(self, status: int, reason: str, sid: str) -> tuple[int, dict, dict]:
        self.refused.append({"subscription": sid, "status": status, "reason": reason})
        return status, {"code": status, "errno": 0, "error": reason}, {}

    def push(self, sid: str, headers: dict, body: bytes) -> tuple[int, dict | None, dict]:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        headers = {k.lower(): v for k, v in headers.items()}
        sub = self.subscriptions.get(sid)
        if sub is None:
            return self._refuse(404, "no such subscription", sid)
        if sub["gone"]:
            return self._refuse(410, "subscription expired or unsubscribed", sid)
        if self.failures.get(sid):
            return self._refuse(self.failures[sid].pop(0), "scripted failure", sid)
        problem = self._vapid_problem(headers.get("authorization", ""), sub)
        if problem:
            return self._refuse(*problem, sid)
        if "ttl" not in headers or not headers["ttl"].isdigit():
            return self._refuse(400, "TTL header required (RFC 8030 section 5.2)", sid)
        if headers.get("content-encoding") != "aes128gcm":
            return self._refuse(400, "Content-Encoding must be aes128gcm (RFC 8291)", sid)
        try:
            plaintext = http_ece.decrypt(body, private_key=sub["private"], auth_secret=sub["auth"],
                                         version="aes128gcm")
        except Exception as exc:  # http_ece raises ECEException or cryptography's InvalidTag
            return self._refuse(400, f"payload does not decrypt: {type(exc).__name__}", sid)
        record = {"id": secrets.token_hex(8), "subscription": sid, "payload": plaintext.decode(errors="replace"),
                  "ttl": int(headers["ttl"]), "urgency": headers.get("urgency", ""), "topic": headers.get("topic", ""),
                  "bytes": len(body)}
        self.received.append(record)
        if self.on_message:
            self.on_message(record)
        return 201, None, {"Location": f"{self.origin}/m/{record['id']}"}

    def _vapid_problem(self, authorization: str, sub: dict) -> tuple[int, str] | None:
        """RFC 8292 section 3: ``vapid t=<JWT>, k=<public key>``; None when it is good."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return 401, "VAPID Authorization required"
        params = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        token, key = params.get("t", ""), params.get("k", "").rstrip("=")
        if key != sub["server_key"]:
            return 403, "VAPID key differs from the subscription's applicationServerKey"
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(key))
            claims = jwt.decode(token, public, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["exp", "aud", "sub"]})
        except (ValueError, jwt.PyJWTError) as exc:
            return 403, f"VAPID JWT refused: {exc}"
        if claims["exp"] > time.time() + 24 * 3600:
            return 403, "VAPID JWT exp is more than 24 hours ahead (RFC 8292 section 2)"
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Web Push service stand-in (decrypts what it receives)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8933)
    parser.add_argument("--folder", required=True, help="where its TLS certificate lives")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    stand_in = WebPushStandIn(folder=Path(args.folder), host=args.host, port=args.port, latency_ms=args.latency_ms)

    def show(record: dict) -> None:
        print(f"webpush -> …{record['subscription'][-8:]} urgency={record['urgency']} ttl={record['ttl']} "
              f"topic={record['topic'] or '-'}: {record['payload'][:200]}", flush=True)

    stand_in.on_message = show
    print(f"Web Push stand-in on {stand_in.origin} (certificate {stand_in.cert})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stand_in.close()


if __name__ == "__main__":
    main()

"""A loopback stand-in for Apple's APNs provider API: HTTP/2 over TLS, token-based auth.

Hypercorn serves an ASGI app over h2 with TLS (ALPN ``h2``), using a throw-away CA and a server
certificate for ``localhost``/``127.0.0.1`` made at start with ``cryptography``; a client trusts
``ca_file`` and runs the same code path it runs against ``api.push.apple.com``.

``POST /3/device/<token>`` is checked as APNs does (Apple, "Sending notification requests to APNs"
and "Handling notification responses from APNs"): HTTP/2 only; ``authorization: bearer <JWT>``
signed ES256 by a trusted key (header ``kid``), ``iss`` its team, ``iat`` at most an hour old
(403 MissingProviderToken / InvalidProviderToken / ExpiredProviderToken); ``apns-topic`` present
and allowed (400 MissingTopic / TopicDisallowed); ``apns-push-type`` alert|background, background
with ``apns-priority`` 5 (400 InvalidPushType / BadPriority); ``apns-collapse-id`` ≤ 64 bytes
(BadCollapseId); ``apns-expiration`` an integer (BadExpirationDate); a 64-hex device token
(BadDeviceToken); a JSON body ≤ 4 KB (413 PayloadTooLarge, 400 PayloadEmpty/BadPayload). A
success is 200 with ``apns-id``; errors are ``{"reason": ...}``, and a 410 carries ``timestamp``.

Failures are scripted per device token (``fail(token, "unregistered", ...)``, one per request) or
for every request (``outage = "503"``). Kinds: ``bad_device_token`` (400), ``unregistered`` (410 +
timestamp; the token then stays unregistered), ``too_many_requests`` (429), ``500``, ``503``,
``expired_provider_token`` (403), ``not_for_topic`` (400 DeviceTokenNotForTopic), ``timeout``.

Run alone (``python -m comms.devserver.standins.apns --port 8933 --key-file key.p8 ...``) it serves
``make run``; ``signing_key()`` makes a P-256 key like the .p8 Apple issues.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import re
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")
_FAILURES = {
    "bad_device_token": (400, "BadDeviceToken"),
    "unregistered": (410, "Unregistered"),
    "too_many_requests": (429, "TooManyRequests"),
    "500": (500, "InternalServerError"),
    "503": (503, "ServiceUnavailable"),
    "expired_provider_token": (403, "ExpiredProviderToken"),
    "not_for_topic": (400, "DeviceTokenNotForTopic"),
}


def signing_key() -> str:
    """A fresh P-256 private key in PKCS#8 PEM: the shape of the .p8 file Apple issues (never Apple's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for localhost/127.0.0.1, made now."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "comms APNs stand-in CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "apns-ca.pem", folder / "apns-server.pem", folder / "apns-server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


class ApnsStandIn:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0,
                 folder: Path | None = None, topics: tuple[str, ...] = (), reuse_tls: bool = False):
        from comms.devserver.embedded import free_port

        self.latency_ms = latency_ms
        self.topics = set(topics)  # empty: any topic
        self.max_token_age = 3600.0  # Apple: a provider token older than one hour is refused
        self.clock = time.time
        self.messages: deque[dict] = deque(maxlen=100_000)  # bounded: `make run` keeps it up for days
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.unregistered: dict[str, int] = {}
        self.outage: str | None = None
        self.timeout_seconds = 3.0
        self.on_message = None  # callable(message) for each accepted push (`make run` prints them)
        self.jwts_seen: list[str] = []
        self.connections: set[tuple] = set()  # the clients' (host, port): one per HTTP/2 connection
        self._keys: dict[str, tuple[str, bytes]] = {}  # kid -> (team id, public key PEM)
        self._lock = threading.Lock()
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="apns-standin-")
        where = Path(folder or self._tmp.name)
        existing = (where / "apns-ca.pem", where / "apns-server.pem", where / "apns-server.key")
        # `make run` makes the files before it starts the workers (they trust the CA from the start)
        self.ca_file, cert, key = existing if reuse_tls and all(p.exists() for p in existing) else tls_files(where)
        self.port = port or free_port()
        self.url = f"https://{host}:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        threading.Thread(target=self._serve, args=(host, str(cert), str(key), started), daemon=True).start()
        if not started.wait(10):
            raise RuntimeError("the APNs stand-in did not start")

    def _serve(self, host: str, cert: str, key: str, started: threading.Event) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"{host}:{self.port}"]
        config.certfile, config.keyfile = cert, key
        config.alpn_protocols = ["h2"]  # APNs speaks HTTP/2 only
        config.accesslog = config.errorlog = None
        config.h2_max_concurrent_streams = 1000  # APNs allows many streams per connection
        # APNs keeps a provider's connection open for hours (Apple: "keep your connections with APNs
        # open across multiple notifications"); hypercorn's defaults close it after 1,000 requests or
        # 5 idle seconds, which would make every burst pay new handshakes and abort in-flight streams.
        config.keep_alive_max_requests = 10**9
        config.keep_alive_timeout = 3600
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()

        async def main() -> None:
            task = asyncio.ensure_future(serve(self._app, config, shutdown_trigger=self._stop.wait))
            for _ in range(200):  # until the socket listens
                try:
                    _r, w = await asyncio.open_connection(host, self.port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.02)
            started.set()
            await task

        self._loop.run_until_complete(main())

    # -- control ------------------------------------------------------------------------------------
    def trust(self, *, key_id: str, team_id: str, private_pem: str) -> None:
        """Accept provider tokens signed with this key (Apple knows the public half of each .p8)."""
        self._keys[key_id] = (team_id, public_pem(private_pem))

    def fail(self, token: str, *kinds: str) -> None:
        self.failures[token].extend(kinds)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.failures.clear()
            self.unregistered.clear()
            self.jwts_seen.clear()
            self.connections.clear()
            self.outage = None

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # -- wire ---------------------------------------------------------------------------------------
    async def _app(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.connections.add(tuple(scope.get("client") or ()))
        if self.latency_ms:  # APNs answers in tens of milliseconds (benchmarks set this)
            await asyncio.sleep(self.latency_ms / 1000)
        status, reply, extra = self._handle(scope, headers, body)
        if status == 0:  # a scripted timeout: APNs took it, the client never hears back in time
            await asyncio.sleep(self.timeout_seconds)
            status, reply, extra = 200, None, {"apns-id": str(uuid.uuid4())}
        data = json.dumps(reply).encode() if reply is not None else b""
        out = [(k.encode(), v.encode()) for k, v in extra.items()]
        if data:
            out.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": data})

    def _handle(self, scope: dict, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        ids = {"apns-id": apns_id}

        def error(status: int, reason: str, **more: Any) -> tuple[int, Any, dict]:
            return status, {"reason": reason, **more}, ids

        match = re.fullmatch(r"/3/device/([^/]+)", scope["path"])
        if scope["method"] != "POST" or not match:
            return error(405 if match else 404, "MethodNotAllowed" if match else "BadPath")
        if scope.get("http_version") != "2":
            return error(400, "BadRequest", detail="HTTP/2 is required")
        auth_problem = self._check_jwt(headers.get("authorization", ""))
        if auth_problem:
            return error(403, auth_problem)
        token = match.group(1)
        topic = headers.get("apns-topic", "")
        if not topic:
            return error(400, "MissingTopic")
        if self.topics and topic not in self.topics:
            return error(400, "TopicDisallowed")
        push_type = headers.get("apns-push-type", "")
        if push_type not in ("alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity"):
            return error(400, "InvalidPushType")
        priority = headers.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5"):
            return error(400, "BadPriority")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return error(400, "BadCollapseId")
        if not re.fullmatch(r"\d*", headers.get("apns-expiration", "")):
            return error(400, "BadExpirationDate")
        if not _TOKEN.match(token):
            return error(400, "BadDeviceToken")
        if len(body) > 4096:
            return error(413, "PayloadTooLarge")
        if not body:
            return error(400, "PayloadEmpty")
        try:
            payload = json.loads(body)
        except ValueError:
            return error(400, "BadPayload")
        with self._lock:
            queue = self.failures.get(token)
            kind = queue.pop(0) if queue else self.outage
            if kind == "unregistered":
                self.unregistered.setdefault(token, int(self.clock() * 1000))
            gone = self.unregistered.get(token)
        if kind == "timeout":
            kind = None
            timed_out = True
        else:
            timed_out = False
        if gone is not None:
            return error(410, "Unregistered", timestamp=gone)
        if kind:
            status, reason = _FAILURES[kind]
            return error(status, reason)
        message = {"token": token, "headers": {k: v for k, v in headers.items() if k.startswith("apns-")},
                   "payload": payload, "apns_id": apns_id, "http_version": scope.get("http_version")}
        with self._lock:
            self.messages.append(message)
        if self.on_message:
            self.on_message(message)
        return (0 if timed_out else 200), None, ids

    def _check_jwt(self, authorization: str) -> str:
        """The reason APNs would give for this provider token, or "" when it passes."""
        if not authorization.lower().startswith("bearer "):
            return "MissingProviderToken"
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            team_id, public = self._keys[header.get("kid", "")]
            if header.get("alg") != "ES256":
                return "InvalidProviderToken"
            claims = jwt.decode(token, public, algorithms=["ES256"], options={"require": ["iss", "iat"],
                                                                             "verify_iat": False})
        except (KeyError, jwt.PyJWTError):
            return "InvalidProviderToken"
        if claims["iss"] != team_id:
            return "InvalidProviderToken"
        age = self.clock() - float(claims["iat"])
        if age > self.max_token_age:
            return "ExpiredProviderToken"
        if age < -300:  # made in the future beyond clock skew
            return "InvalidProviderToken"
        with self._lock:
            if not self.jwts_seen or self.jwts_seen[-1] != token:
                self.jwts_seen.append(token)
        return ""

    def by_token(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for message in list(self.messages):
            out[message["token"]].append(message)
        return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="APNs provider API stand-in (HTTP/2 + TLS) on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8933)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each send this much later")
    parser.add_argument("--folder", required=True, help="where the TLS files go (apns-ca.pem is the CA to trust)")
    parser.add_argument("--key-file", required=True, help="the .p8 signing key to trust")
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--team-id", required=True)
    args = parser.parse_args(argv)
    stand_in = ApnsStandIn(host=args.host, port=args.port, latency_ms=args.latency_ms, folder=Path(args.folder),
                           reuse_tls=True)
    stand_in.trust(key_id=args.key_id, team_id=args.team_id, private_pem=Path(args.key_file).read_text())

    def show(message: dict) -> None:
        alert = message["payload"].get("aps", {}).get("alert", {})
        print(f"push -> apns …{message['token'][-10:]} ({message['headers'].get('apns-push-type')}): "
              f"{alert.get('title', '')!r} {alert.get('body', '')!r}", flush=True)

    stand_in.on_message = show
    print(f"APNs stand-in on {stand_in.url} (HTTP/2, CA {stand_in.ca_file})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stand_in.close()


if __name__ == "__main__":
    main()

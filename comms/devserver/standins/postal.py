"""A loopback stand-in for a Postal mail server: its send API and its signed webhooks.

Send API (Postal's legacy HTTP API, as django-anymail's Postal backend calls it): ``POST
/api/v1/send/message`` (JSON: to, from, subject, plain_body, html_body, headers, ...) or
``/api/v1/send/raw`` (mail_from, rcpt_to, base64 ``data``), authenticated by ``X-Server-API-Key``.
Postal answers HTTP 200 either way: ``{"status": "success", "time", "flags", "data": {"message_id",
"messages": {address: {"id", "token"}}}}``, or ``{"status": "error", "data": {"code", "message"}}``
(``InvalidServerAPIKey``, ``NoRecipients``, ``UnauthenticatedFromAddress``, ...); scripted with
``fail(code, message)``, or ``fail_http(status)`` for a proxy in front of it answering 5xx.

Webhooks: after a send it posts, per recipient, the event Postal would (``MessageSent`` by default;
``outcomes[address]`` = "bounce" → ``MessageBounced``, "hardfail" → ``MessageDeliveryFailed``,
"softfail" → ``MessageDelayed``, "held" → ``MessageHeld``), signed like Postal v3 (lib/postal/http.rb):
``X-Postal-Signature`` (RSA-SHA1, what older Postal and anymail check), ``X-Postal-Signature-256``
(RSA-SHA256) and ``X-Postal-Signature-KID``, all over the exact body. ``public_key`` is the key as
Postal shows it (base64 SubjectPublicKeyInfo, the DNS record's ``p=``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import uuid
from collections import deque

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from comms.devserver.standins.httpserver import serve_json
from comms.devserver.standins.receipts import ReceiptSender


def public_key_b64(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign_headers(key: rsa.RSAPrivateKey, body: bytes) -> dict[str, str]:
    """Postal's three signature headers for `body`."""
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return {"X-Postal-Signature-KID": hashlib.sha256(pkcs1).hexdigest(),
            "X-Postal-Signature": base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA1())).decode(),
            "X-Postal-Signature-256": base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()}


class PostalStandIn:
    def __init__(self, api_key: str = "postal-test-key", *, port: int = 0, latency_ms: float = 0.0,
                 webhook_url: str = "", receipt_delay: float | None = 0.5, key: rsa.RSAPrivateKey | None = None):
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = public_key_b64(self.key)
        self.api_key, self.latency_ms, self.webhook_url = api_key, latency_ms, webhook_url
        self.requests: list[dict] = []
        self.replies: deque[tuple[int, dict]] = deque()
        self.outcomes: dict[str, str] = {}
        self.on_message = None
        self.receipts = ReceiptSender(delay=receipt_delay)
        self._next_id = 1000
        self._lock = threading.Lock()
        stand_in = self

        self.server = serve_json(stand_in._answer, port=port, latency_ms=lambda: stand_in.latency_ms,
                                 content_type="application/json")
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.api_url = self.url + "/"

    def fail(self, code: str, message: str = "") -> None:
        self.replies.append((200, {"status": "error", "time": 0.01, "flags": {},
                                   "data": {"code": code, "message": message or code}}))

    def fail_http(self, status: int) -> None:
        self.replies.append((status, {"status": "error", "data": {"code": "ServiceUnavailable"}}))

    @staticmethod
    def _error(code: str, message: str) -> dict:
        return {"status": "error", "time": 0.0, "flags": {}, "data": {"code": code, "message": message}}

    def _answer(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        if path not in ("/api/v1/send/message", "/api/v1/send/raw"):
            return 404, {"status": "error", "data": {"code": "InvalidController", "message": "Not found"}}
        if headers.get("X-Server-API-Key") != self.api_key:
            return 200, self._error("InvalidServerAPIKey", "The API token provided in X-Server-API-Key was not valid.")
        try:
            req = json.loads(body)
        except ValueError:
            return 200, {"status": "parameter-error", "time": 0.0, "flags": {},
                         "data": {"message": "Parameters must be a JSON object"}}
        self.requests.append({"path": path, "json": req})
        if self.replies:
            return self.replies.popleft()
        if path.endswith("/raw"):
            recipients, subject, sender = list(req.get("rcpt_to") or []), "", req.get("mail_from", "")
        else:
            recipients = [*(req.get("to") or []), *(req.get("cc") or []), *(req.get("bcc") or [])]
            subject, sender = req.get("subject", ""), req.get("from", "")
        if not recipients:
            return 200, self._error("NoRecipients", "There are no recipients defined to receive this message")
        if not sender:
            return 200, self._error("FromAddressMissing", "The From address is missing and is required")
        message_id = f"{uuid.uuid4()}@rp.postal.example"
        messages = {}
        for address in recipients:
            with self._lock:
                self._next_id += 1
                number = self._next_id
            messages[address] = {"id": number, "token": secrets.token_urlsafe(8)[:10]}
            self._webhook(address, number, messages[address]["token"], message_id, sender, subject, req.get("tag"))
        if self.on_message:
            self.on_message({"to": recipients, "from": sender, "subject": subject, "message_id": message_id})
        return 200, {"status": "success", "time": 0.05, "flags": {},
                     "data": {"message_id": message_id, "messages": messages}}

    def _webhook(self, address: str, number: int, token: str, message_id: str, sender: str, subject: str,
                 tag: str | None) -> None:
        now = time.time()
        message = {"id": number, "token": token, "direction": "outgoing", "message_id": message_id, "to": address,
                   "from": sender, "subject": subject, "timestamp": now, "spam_status": "NotSpam", "tag": tag}
        outcome = self.outcomes.get(address, "sent")
        if outcome == "bounce":
            event = "MessageBounced"
            payload = {"original_message": message,
                       "bounce": {**message, "id": number + 500000, "direction": "incoming", "to": sender,
                                  "from": f"MAILER-DAEMON@{address.split('@')[-1]}",
                                  "subject": "Mail delivery failed: returning message to sender"}}
        else:
            event, status, details, output = {
                "sent": ("MessageSent", "Sent", f"Message for {address} accepted by 192.0.2.25:25", "250 2.0.0 OK"),
                "hardfail": ("MessageDeliveryFailed", "HardFail", f"Permanent SMTP delivery error for {address}",
                             "550 5.1.1 User unknown"),
                "softfail": ("MessageDelayed", "SoftFail", "Temporary SMTP delivery error", "451 4.7.1 Try later"),
                "held": ("MessageHeld", "Held", "Message held: the recipient is on the suppression list", ""),
            }[outcome]
            payload = {"message": message, "status": status, "details": details, "output": output,
                       "sent_with_ssl": True, "timestamp": now, "time": 0.2}
        self.post_event(event, payload, queue=True)

    def post_event(self, event: str, payload: dict, *, queue: bool = False) -> tuple[int, str] | None:
        """Post (or queue) one webhook event, signed as Postal signs it."""
        body = json.dumps({"event": event, "timestamp": time.time(), "payload": payload,
                           "uuid": str(uuid.uuid4())}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Postal/3.3.4", **sign_headers(self.key, body)}
        if queue:
            self.receipts.queue(self.webhook_url, body, headers)
            return None
        return self.receipts.post_now(self.webhook_url, body, headers)

    def close(self) -> None:
        self.receipts.close()
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`make run`: serve on a loopback port, print every email, post signed webhooks to ours."""
    import argparse

    parser = argparse.ArgumentParser(description="Postal send API + webhooks stand-in on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--key-file", required=True, help="PEM private key (created when missing)")
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each message this much later")
    args = parser.parse_args(argv)
    stand_in = PostalStandIn(args.api_key, port=args.port, latency_ms=args.latency_ms, webhook_url=args.webhook_url,
                             key=load_key(args.key_file))
    stand_in.on_message = lambda m: print(f"email {m['from']} -> {', '.join(m['to'])} [{m['message_id']}]: "
                                          f"{m['subject']!r}", flush=True)
    print(f"Postal stand-in on {stand_in.url}", flush=True)
    try:
        while True:
            time.sleep(60)
            del stand_in.requests[:-1000]
    except KeyboardInterrupt:
        stand_in.close()
        sys.exit(0)


def load_key(path: str) -> rsa.RSAPrivateKey:
    """The stand-in's signing key, kept in `path` so our configured public key survives restarts."""
    import os

    if not os.path.exists(path):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(path, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        os.chmod(path, 0o600)
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


if __name__ == "__main__":
    main()

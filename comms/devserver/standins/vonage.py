"""A loopback stand-in for Vonage's SMS API (``POST /sms/json``) and its signed callbacks.

It takes the form (or JSON) Vonage takes, authenticated by ``api_key`` + ``api_secret`` or by a request
signature (``sig`` over the sorted parameters with ``timestamp``, checked with the signature secret and
method), and answers like Vonage: HTTP 200 ``{"message-count", "messages": [...]}`` with ``status`` "0"
per part, or a non-zero status with ``error-text`` (scripted per recipient in ``failures``). After a
send it posts the delivery receipt (DLR) to the ``callback`` of the request (else ``dlr_url``), signed
with the account's signature secret: the fields Vonage documents (``msisdn``, ``to``, ``messageId``,
``status``, ``err-code``, ``client-ref``, ``message-timestamp``, ``timestamp``, ``nonce``, ``sig``).
``inbound(from_, text)`` posts an inbound SMS the same way. The signature is written here from
Vonage's description, independently of our client's, so the tests check one against the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import sys
import time
import uuid
from urllib.parse import parse_qsl, urlencode

from comms.devserver.standins.httpserver import serve_json
from comms.devserver.standins.receipts import ReceiptSender

ERROR_TEXT = {"1": "Throttled", "2": "Missing to param", "3": "Invalid to param", "4": "Bad Credentials",
              "5": "Internal Error", "6": "Unroutable message - rejected", "7": "Number barred",
              "9": "Quota Exceeded - rejected", "14": "Invalid Signature", "15": "Illegal Sender Address - rejected",
              "29": "Non White-listed Destination - rejected"}


def sign(params: dict[str, str], secret: str, method: str) -> str:
    """"Signing requests": sorted ``&key=value`` (``&``/``=`` in values as ``_``), MD5 with the secret
    appended (``md5hash``) or an HMAC keyed with it."""
    base = "".join("&" + k + "=" + str(v).replace("&", "_").replace("=", "_") for k, v in sorted(params.items())
                   if k != "sig")
    if method == "md5hash":
        return hashlib.md5((base + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), base.encode(), method).hexdigest()


class VonageStandIn:
    def __init__(self, api_key: str, api_secret: str, *, signature_secret: str = "", signature_method: str = "md5hash",
                 port: int = 0, latency_ms: float = 0.0, dlr_url: str = "", inbound_url: str = "",
                 receipt_delay: float | None = 0.5):
        self.api_key, self.api_secret, self.latency_ms = api_key, api_secret, latency_ms
        self.signature_secret, self.signature_method = signature_secret, signature_method
        self.dlr_url, self.inbound_url = dlr_url, inbound_url
        self.messages: list[dict] = []
        self.failures: dict[str, list[str]] = {}  # to (no +) -> [status, ...]
        self.outcomes: dict[str, tuple[str, str]] = {}  # to -> (DLR status, err-code)
        self.on_message = None
        self.receipts = ReceiptSender(delay=receipt_delay)
        stand_in = self

        self.server = serve_json(
            lambda path, headers, body: stand_in._answer(path, headers.get("Content-Type", ""), body),
            port=port, latency_ms=lambda: stand_in.latency_ms)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    @staticmethod
    def _refused(status: str, text: str = "") -> dict:
        return {"message-count": "1", "messages": [{"status": status, "error-text": text or ERROR_TEXT.get(status, "")}]}

    def _authorised(self, form: dict[str, str]) -> bool:
        if form.get("api_key") != self.api_key:
            return False
        if "sig" in form:
            if not self.signature_secret or abs(time.time() - float(form.get("timestamp") or 0)) > 300:
                return False
            expected = sign(form, self.signature_secret, self.signature_method)
            return hmac.compare_digest(expected, form["sig"].lower())
        return hmac.compare_digest(form.get("api_secret", ""), self.api_secret)

    def _answer(self, path: str, content_type: str, body: bytes) -> tuple[int, dict]:
        if path.split("?")[0] != "/sms/json":
            return 404, {"type": "https://developer.nexmo.com/api-errors#not-found", "title": "Not Found"}
        if content_type.startswith("application/json"):
            form = {k: str(v) for k, v in json.loads(body or b"{}").items()}
        else:
            form = dict(parse_qsl(body.decode()))
        if not self._authorised(form):
            return 200, self._refused("14" if "sig" in form else "4")  # Vonage: 200 with a status
        for name in ("from", "to", "text"):
            if not form.get(name):
                return 200, self._refused("2", f"Missing {name} param")
        to = form["to"]
        if not to.isdigit():
            return 200, self._refused("3", "Invalid to param")
        queue = self.failures.get(to)
        if queue:
            return 200, self._refused(queue.pop(0))
        text = form["text"]
        limit, part = (70, 67) if form.get("type") == "unicode" else (160, 153)
        count = 1 if len(text) <= limit else -(-len(text) // part)
        parts = [{"to": to, "message-id": uuid.uuid4().hex[:16].upper(), "status": "0",
                  "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "12345",
                  "client-ref": form.get("client-ref", "")} for _ in range(count)]
        record = {**form, "parts": parts}
        self.messages.append(record)
        if self.on_message:
            self.on_message(record)
        for p in parts:
            self._receipt(form, p)
        return 200, {"message-count": str(count), "messages": parts}

    def _signed(self, fields: dict[str, str]) -> bytes:
        fields = {**fields, "timestamp": str(int(time.time())), "nonce": str(uuid.uuid4())}
        if self.signature_secret:
            fields["sig"] = sign(fields, self.signature_secret, self.signature_method)
        return urlencode(fields).encode()

    def _receipt(self, form: dict[str, str], part: dict) -> None:
        status, err = self.outcomes.get(form["to"], ("delivered", "0"))
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        fields = {"msisdn": form["to"], "to": form["from"], "network-code": "12345", "messageId": part["message-id"],
                  "price": "0.03330000", "status": status, "scts": dt.datetime.now(dt.timezone.utc).strftime("%y%m%d%H%M"),
                  "err-code": err, "api-key": self.api_key, "client-ref": form.get("client-ref", ""),
                  "message-timestamp": stamp}
        self.receipts.queue(form.get("callback") or self.dlr_url, self._signed(fields),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def inbound(self, from_: str, text: str, *, to: str = "") -> tuple[int, str]:
        """A text from a handset (digits, no +) to our number, posted as Vonage's inbound-sms webhook."""
        owner = to or (self.messages[-1]["from"] if self.messages else "15005550006")
        words = text.strip().split()
        fields = {"msisdn": from_.lstrip("+"), "to": owner.lstrip("+"), "messageId": uuid.uuid4().hex[:16].upper(),
                  "text": text, "type": "text", "keyword": words[0].upper() if words else "",
                  "api-key": self.api_key,
                  "message-timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
        return self.receipts.post_now(self.inbound_url, self._signed(fields),
                                      {"Content-Type": "application/x-www-form-urlencoded"})

    def close(self) -> None:
        self.receipts.close()
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`make run`: serve on a loopback port, print every SMS, post signed DLRs to our webhook."""
    import argparse

    parser = argparse.ArgumentParser(description="Vonage SMS API stand-in on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--signature-secret", default="")
    parser.add_argument("--signature-method", default="md5hash")
    parser.add_argument("--dlr-url", default="")
    parser.add_argument("--inbound-url", default="")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each message this much later")
    args = parser.parse_args(argv)
    stand_in = VonageStandIn(args.api_key, args.api_secret, signature_secret=args.signature_secret,
                             signature_method=args.signature_method, port=args.port, latency_ms=args.latency_ms,
                             dlr_url=args.dlr_url, inbound_url=args.inbound_url)
    stand_in.on_message = lambda m: print(f"SMS {m['from']} -> {m['to']} [{m['parts'][0]['message-id']}]: "
                                          f"{m['text']!r}", flush=True)
    print(f"Vonage stand-in on {stand_in.url} (api key {args.api_key})", flush=True)
    try:
        while True:
            time.sleep(60)
            del stand_in.messages[:-1000]
    except KeyboardInterrupt:
        stand_in.close()
        sys.exit(0)


if __name__ == "__main__":
    main()

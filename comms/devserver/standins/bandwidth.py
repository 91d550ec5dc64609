"""A loopback stand-in for Bandwidth's Messaging API v2 and its callbacks.

``POST /api/v2/users/{accountId}/messages`` with HTTP Basic auth and JSON ``{applicationId, to, from,
text, tag}`` answers ``202`` with the message resource, or Bandwidth's error bodies (``{"type",
"description", "fieldErrors"}``: 400 ``request-validation``, 401 ``unauthorized``, 403 ``forbidden``,
429, 5xx; dev.bandwidth.com/docs/messaging/errors). After a send it posts the receipt Bandwidth would
post to the application's callback URL: a JSON array with one ``message-delivered`` (or, when scripted
with ``outcomes[to] = error_code``, ``message-failed`` with ``errorCode``) event, authenticated with
the application's callback basic auth. ``inbound(from_, text)`` posts a ``message-received`` event.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import sys
import time

from comms.devserver.standins.httpserver import serve_json
from comms.devserver.standins.receipts import ReceiptSender

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# errorCode -> description, as Bandwidth's message-failed events carry them (messaging error codes).
FAILURE_TEXT = {4720: "destination-rejected-invalid-destination", 4721: "destination-rejected-not-sms-capable",
                4775: "destination-rejected-user-opted-out", 4702: "destination-unavailable",
                4770: "destination-rejected-spam", 5600: "destination-carrier-unavailable"}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BandwidthStandIn:
    def __init__(self, account_id: str, username: str, password: str, *, application_id: str = "app-1",
                 port: int = 0, latency_ms: float = 0.0, callback_url: str = "", callback_auth: str = "",
                 receipt_delay: float | None = 0.5):
        self.account_id, self.username, self.password = account_id, username, password
        self.application_id, self.latency_ms = application_id, latency_ms
        self.callback_url, self.callback_auth = callback_url, callback_auth  # "user:password"
        self.messages: list[dict] = []
        self.failures: dict[str, list[tuple[int, str, str]]] = {}  # to -> [(status, type, description)]
        self.outcomes: dict[str, int] = {}  # to -> errorCode of its message-failed receipt
        self.on_message = None
        self.receipts = ReceiptSender(delay=receipt_delay)
        stand_in = self

        self.server = serve_json(stand_in._answer, port=port, latency_ms=lambda: stand_in.latency_ms,
                                 content_type="application/json; charset=utf-8")
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _answer(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, {"type": "unauthorized", "description": "Authentication Failed"}
        if path != f"/api/v2/users/{self.account_id}/messages":
            return 404, {"type": "not-found", "description": "Path not found"}
        if not headers.get("Content-Type", "").startswith("application/json"):
            return 415, {"type": "unsupported-media-type", "description": "Content-Type must be application/json"}
        try:
            req = json.loads(body)
        except ValueError:
            return 400, {"type": "request-validation", "description": "Your request could not be accepted"}
        to = req.get("to") if isinstance(req, dict) else None
        field_errors = []
        if req.get("applicationId") != self.application_id:
            field_errors.append({"fieldName": "applicationId", "description": "Application not found"})
        if not isinstance(to, list) or not to or not all(isinstance(t, str) and E164.match(t) for t in to):
            field_errors.append({"fieldName": "to", "description": f"'{to}' must be replaced with a valid "
                                                                   "E164 formatted telephone number"})
        if not E164.match(str(req.get("from", ""))):
            field_errors.append({"fieldName": "from", "description": "from must be a valid E164 number"})
        if field_errors:
            return 400, {"type": "request-validation", "description": "Your request could not be accepted",
                         "fieldErrors": field_errors}
        queue = self.failures.get(to[0])
        if queue:
            status, kind, text = queue.pop(0)
            return status, {"type": kind, "description": text}
        text = str(req.get("text", ""))
        message = {"id": f"{int(time.time() * 1000)}{secrets.token_hex(8)}", "owner": req["from"],
                   "applicationId": self.application_id, "time": _now(),
                   "segmentCount": 1 if len(text) <= 160 else -(-len(text) // 153), "direction": "out",
                   "to": to, "from": req["from"], "media": [], "text": text, "tag": req.get("tag", ""),
                   "priority": "default"}
        self.messages.append(message)
        if self.on_message:
            self.on_message(message)
        self._receipt(message)
        return 202, message

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "BandwidthAPI/v2"}
        if self.callback_auth:
            headers["Authorization"] = "Basic " + base64.b64encode(self.callback_auth.encode()).decode()
        return headers

    def _receipt(self, message: dict) -> None:
        to = message["to"][0]
        code = self.outcomes.get(to)
        event = {"type": "message-delivered", "time": _now(), "description": "ok", "to": to,
                 "message": {**message, "text": ""}}  # Bandwidth omits the text from status callbacks
        if code:
            event.update(type="message-failed", description=FAILURE_TEXT.get(code, "message-failed"), errorCode=code)
        self.receipts.queue(self.callback_url, json.dumps([event]).encode(), self._headers())

    def inbound(self, from_: str, text: str, *, to: str = "") -> tuple[int, str]:
        """A text from a handset to our number, posted as Bandwidth's message-received callback."""
        owner = to or (self.messages[-1]["from"] if self.messages else "+15005550006")
        event = {"type": "message-received", "time": _now(), "description": "Incoming message received",
                 "to": owner, "message": {"id": f"{int(time.time() * 1000)}{secrets.token_hex(8)}", "time": _now(),
                                          "to": [owner], "from": from_, "text": text, "applicationId":
                                          self.application_id, "media": [], "owner": owner, "direction": "in",
                                          "segmentCount": 1}}
        return self.receipts.post_now(self.callback_url, json.dumps([event]).encode(), self._headers())

    def close(self) -> None:
        self.receipts.close()
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`make run`: serve on a loopback port, print every SMS, post receipts to our webhook."""
    import argparse

    parser = argparse.ArgumentParser(description="Bandwidth Messaging API v2 stand-in on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-id", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--application-id", required=True)
    parser.add_argument("--callback-url", default="")
    parser.add_argument("--callback-auth", default="", help="user:password of the application's callbacks")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each message this much later")
    args = parser.parse_args(argv)
    stand_in = BandwidthStandIn(args.account_id, args.username, args.password, application_id=args.application_id,
                                port=args.port, latency_ms=args.latency_ms, callback_url=args.callback_url,
                                callback_auth=args.callback_auth)
    stand_in.on_message = lambda m: print(f"SMS {m['from']} -> {m['to'][0]} [{m['id']}]: {m['text']!r}", flush=True)
    print(f"Bandwidth stand-in on {stand_in.url} (account {args.account_id})", flush=True)
    try:
        while True:
            time.sleep(60)
            del stand_in.messages[:-1000]
    except KeyboardInterrupt:
        stand_in.close()
        sys.exit(0)


if __name__ == "__main__":
    main()

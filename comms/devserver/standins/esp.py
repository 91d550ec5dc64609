"""Loopback stand-ins for the send APIs of SendGrid (v3 ``/mail/send``), Mailgun (``/v3/{domain}/messages``)
and Postmark (``/email``), as django-anymail calls them (each backend takes an ``api_url``).

Each checks its ESP's authentication (SendGrid: ``Authorization: Bearer``; Mailgun: HTTP Basic
``api:<key>``; Postmark: ``X-Postmark-Server-Token``), records the parsed request and answers in the
ESP's success format, or with a scripted failure: ``fail(status, body)`` (consumed one per request).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import deque
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler

from comms.devserver.standins.esp_suppressions import SuppressionLists
from comms.devserver.standins.httpserver import StandInServer
from urllib.parse import parse_qs


def _form(content_type: str, body: bytes) -> dict[str, list[str]]:
    if content_type.startswith("multipart/form-data"):
        parsed = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        out: dict[str, list[str]] = {}
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            out.setdefault(name, []).append(part.get_content() if part.get_content_maintype() == "text"
                                            else part.get_payload(decode=True).decode(errors="replace"))
        return out
    return parse_qs(body.decode())


class EspStandIn:
    """``kind`` is "sendgrid", "mailgun" or "postmark"; ``api_url`` is what anymail's setting takes."""

    def __init__(self, kind: str, *, key: str = "esp-test-key", latency_ms: float = 0.0):
        self.latency_ms = latency_ms
        self.kind, self.key = kind, key
        self.requests: list[dict] = []
        self.replies: deque[tuple[int, object]] = deque()
        stand_in = self

        self.suppressions = SuppressionLists()  # the ESP's suppression lists (esp_suppressions.py)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.do_POST()

            def do_POST(self):
                if stand_in.latency_ms:  # an ESP's API answers in 30-150 ms (benchmarks set this)
                    time.sleep(stand_in.latency_ms / 1000)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, headers = stand_in._answer(self.path, self.headers, body, self.command)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = StandInServer(("127.0.0.1", 0), Handler)
        base = f"http://127.0.0.1:{self.server.server_port}"
        self.api_url = {"sendgrid": f"{base}/v3/", "mailgun": f"{base}/v3/", "postmark": f"{base}/"}[kind]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def fail(self, status: int, body: object) -> None:
        self.replies.append((status, body))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- per ESP --------------------------------------------------------------------------------------
    def _authorised(self, headers) -> bool:
        if self.kind == "sendgrid":
            return headers.get("Authorization") == f"Bearer {self.key}"
        if self.kind == "mailgun":
            return headers.get("Authorization") == "Basic " + base64.b64encode(f"api:{self.key}".encode()).decode()
        return headers.get("X-Postmark-Server-Token") == self.key

    def _answer(self, path: str, headers, body: bytes, method: str = "POST") -> tuple[int, object, dict]:
        routes = {"sendgrid": "/v3/mail/send", "postmark": "/email"}
        if self.suppressions.handles(self.kind, method, path):
            if not self._authorised(headers):
                return 401, self._unauthorised(), {}
            self.requests.append({"path": path, "method": method, "body": body.decode(errors="replace")})
            if self.replies:
                status, payload = self.replies.popleft()
                return status, payload, {}
            status, payload = self.suppressions.answer(self.kind, method, path, body)
            return status, payload, {}
        if self.kind == "mailgun":
            if not (path.startswith("/v3/") and path.endswith("/messages")):
                return 404, {"message": "not found"}, {}
        elif path != routes[self.kind]:
            return 404, {"message": "not found"}, {}
        if not self._authorised(headers):
            return 401, self._unauthorised(), {}
        content_type = headers.get("Content-Type", "")
        record = {"path": path, "headers": {k.lower(): v for k, v in headers.items()}}
        if content_type.startswith("application/json"):
            record["json"] = json.loads(body)
        else:
            record["form"] = _form(content_type, body)
        self.requests.append(record)
        if self.replies:
            status, payload = self.replies.popleft()
            return status, payload, {}
        if self.kind == "sendgrid":
            return 202, b"", {"X-Message-Id": secrets.token_urlsafe(16)}
        if self.kind == "mailgun":
            domain = path.split("/")[2]
            return 200, {"id": f"<{secrets.token_hex(8)}@{domain}>", "message": "Queued. Thank you."}, {}
        to = record["json"].get("To", "")
        return 200, {"To": to, "SubmittedAt": "2026-11-24T07:00:00Z", "MessageID": str(uuid.uuid4()),
                     "ErrorCode": 0, "Message": "OK"}, {}

    def _unauthorised(self) -> object:
        if self.kind == "sendgrid":
            return {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked",
                                "field": None, "help": None}]}
        if self.kind == "mailgun":
            return b"Forbidden"
        return {"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token "
                                            "request header was invalid."}

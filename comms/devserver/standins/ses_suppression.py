"""A loopback stand-in for the SES v2 account-level suppression list, as boto3's ``sesv2`` client calls it.

moto (5.1) implements SES v2 but not its suppression-list operations, so this speaks the REST-JSON
wire format of ``PutSuppressedDestination`` (``PUT /v2/email/suppression/addresses``) and
``ListSuppressedDestinations`` (``GET`` of the same, ``Reason``/``NextToken``/``PageSize`` query
parameters, {"SuppressedDestinationSummaries": [...], "NextToken"}). A request without a SigV4
``Authorization`` header is refused as SES would (403 MissingAuthenticationTokenException).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from comms.devserver.standins.httpserver import StandInServer

ROUTE = "/v2/email/suppression/addresses"


class SesSuppressionStandIn:
    def __init__(self):
        self.entries: dict[str, tuple[str, float]] = {}  # address -> (BOUNCE|COMPLAINT, updated)
        self.requests: list[dict] = []
        self.replies: deque[tuple[int, object]] = deque()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, payload: object, error_type: str = "") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                split = urlsplit(self.path)
                stand_in.requests.append({"method": self.command, "path": self.path, "body": body.decode()})
                if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
                    return self._reply(403, {"message": "Missing Authentication Token"},
                                       "MissingAuthenticationTokenException")
                if stand_in.replies:
                    status, payload = stand_in.replies.popleft()
                    return self._reply(status, payload, "TooManyRequestsException" if status == 429 else "")
                if split.path != ROUTE:
                    return self._reply(404, {"message": "not found"}, "NotFoundException")
                if self.command == "PUT":
                    data = json.loads(body or b"{}")
                    if data.get("Reason") not in ("BOUNCE", "COMPLAINT") or "@" not in data.get("EmailAddress", ""):
                        return self._reply(400, {"message": "Invalid EmailAddress or Reason"}, "BadRequestException")
                    stand_in.entries[data["EmailAddress"].lower()] = (data["Reason"], time.time())
                    return self._reply(200, {})
                query = parse_qs(split.query)
                reasons = set(query.get("Reason", ["BOUNCE", "COMPLAINT"]))
                size = int(query.get("PageSize", ["1000"])[0])
                start = int(query.get("NextToken", ["0"])[0])
                rows = [(a, r, t) for a, (r, t) in sorted(stand_in.entries.items()) if r in reasons]
                page = rows[start:start + size]
                out = {"SuppressedDestinationSummaries": [{"EmailAddress": a, "Reason": r, "LastUpdateTime": t}
                                                          for a, r, t in page]}
                if start + size < len(rows):
                    out["NextToken"] = str(start + size)
                return self._reply(200, out)

            do_GET = do_PUT = _handle

            def log_message(self, *args):
                pass

        self.server = StandInServer(("127.0.0.1", 0), Handler)
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def seed(self, address: str, reason: str) -> None:
        self.entries[address.lower()] = (reason, time.time())

    def fail(self, status: int, body: object) -> None:
        self.replies.append((status, body))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

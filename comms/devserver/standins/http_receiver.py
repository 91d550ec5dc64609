"""A loopback HTTP receiver for outbound webhooks: records requests, answers as scripted."""

from __future__ import annotations

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler

from comms.devserver.standins.httpserver import StandInServer


class Receiver:
    def __init__(self, host: str = "127.0.0.1", *, latency_ms: float = 0.0):
        self.latency_ms = latency_ms
        self.requests: list[dict] = []
        self.replies: deque = deque()  # (status, headers) consumed per request; empty = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the webhook channel reuses connections

            def do_POST(self):
                if receiver.latency_ms:  # a subscriber answers in 50-500 ms (benchmarks set this)
                    time.sleep(receiver.latency_ms / 1000)
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": self.rfile.read(length).decode()})
                status, headers = receiver.replies.popleft() if receiver.replies else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = StandInServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

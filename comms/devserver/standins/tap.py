"""A recording pass-through on loopback: forwards each request to an upstream server (moto) and keeps
a copy, so a test can check what an SDK put on the wire (e.g. SNS message attributes, which moto
does not keep)."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Tap:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.requests: list[dict] = []
        tap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                tap.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                     "form": {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}})
                upstream_conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                try:
                    upstream_conn.request("POST", self.path, body=body, headers={k: v for k, v in self.headers.items()})
                    response = upstream_conn.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    upstream_conn.close()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def actions(self, name: str) -> list[dict]:
        """The recorded form bodies of one AWS query action (e.g. "Publish")."""
        return [r["form"] for r in self.requests if r["form"].get("Action") == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

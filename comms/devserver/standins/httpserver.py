"""The HTTP server every HTTP stand-in runs on."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class StandInServer(ThreadingHTTPServer):
    """One thread per connection (keep-alive connections do not block each other or close())."""

    # A worker process opens up to COMMS_PROVIDER_CONCURRENCY connections at once: the default listen
    # backlog (5) would refuse some of them, which a real API never does.
    request_queue_size = 256
    daemon_threads = True
    block_on_close = False


def serve_json(answer: Callable[[str, Any, bytes], tuple[int, Any]], *, port: int = 0,
               latency_ms: Callable[[], float] = lambda: 0.0,
               content_type: str = "application/json") -> StandInServer:
    """A loopback server whose POSTs are answered as JSON by `answer(path, headers, body)`, after the
    stand-in's current latency (read per request, so a test or benchmark may change it); started."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            if latency := latency_ms():  # real APIs answer in 50-300 ms (benchmarks set this)
                time.sleep(latency / 1000)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = answer(self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = StandInServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server

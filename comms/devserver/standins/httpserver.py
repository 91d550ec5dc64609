"""The HTTP server every HTTP stand-in runs on."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class StandInServer(ThreadingHTTPServer):
    """One thread per connection (keep-alive connections do not block each other or close())."""

    # A worker process opens up to COMMS_PROVIDER_CONCURRENCY connections at once: the default listen
    # backlog (5) would refuse some of them, which a real API never does.
    request_queue_size = 256
    daemon_threads = True
    block_on_close = False

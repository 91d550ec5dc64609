"""A small synchronous WebSocket client for the tests (the `websockets` library's sync client)."""

from __future__ import annotations

import json
import time

from websockets.sync.client import connect


class Socket:
    def __init__(self, base_url: str, token: str | None = None, *, origin: str | None = None):
        url = base_url.replace("http://", "ws://") + "/ws/conversations" + (f"?token={token}" if token else "")
        # Entered as a context manager (websockets >= 17.1 deprecates the bare connect()).
        self.ws = connect(url, origin=origin, open_timeout=20).__enter__()
        self.seen: list[dict] = []

    def send(self, frame: dict) -> None:
        self.ws.send(json.dumps(frame))

    def next(self, event_type: str, timeout: float = 10.0, **match) -> dict:
        """The next event of `event_type` (matching the given fields), skipping others (they are kept in seen)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event_type} {match} within {timeout}s; saw {[e.get('type') for e in self.seen]}")
            try:
                event = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                continue
            self.seen.append(event)
            if event.get("type") == event_type and all(event.get(k) == v for k, v in match.items()):
                return event

    def close(self) -> None:
        self.ws.__exit__(None, None, None)

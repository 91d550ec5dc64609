"""What a provider stand-in sends back: delivery receipts and inbound messages, POSTed to our webhooks.

A stand-in queues each callback with the time it is due (``delay`` seconds after the send, as a carrier's
receipt arrives later than the API's answer); a background thread posts them when due, and ``flush()``
posts everything still pending at once (tests call it after the engine recorded the send, so the
receipt finds its message). Every answer is kept in ``answers`` (status, body) for the tests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass(order=True)
class _Callback:
    due: float
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    headers: dict = field(compare=False)


class ReceiptSender:
    def __init__(self, *, delay: float | None = 0.5):
        self.delay = delay  # None: only flush() sends (tests)
        self.pending: list[_Callback] = []
        self.answers: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._client = httpx.Client(timeout=10)
        threading.Thread(target=self._run, daemon=True).start()

    def queue(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if not url:
            return
        due = time.monotonic() + (self.delay if self.delay is not None else 10**9)
        with self._lock:
            self.pending.append(_Callback(due, url, body, headers))
            self.pending.sort()
        self._wake.set()

    def post_now(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """Post one callback at once (inbound messages), returning the answer."""
        try:
            response = self._client.post(url, content=body, headers=headers)
            answer = (response.status_code, response.text[:500])
        except httpx.HTTPError as exc:  # our server down: a real provider retries later; we record it
            answer = (0, f"{type(exc).__name__}: {exc}")
        self.answers.append(answer)
        return answer

    def flush(self) -> list[tuple[int, str]]:
        """Send every pending callback now, in order; their answers."""
        with self._lock:
            due, self.pending = self.pending, []
        return [self.post_now(c.url, c.body, c.headers) for c in due]

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(0.2)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                due = [c for c in self.pending if c.due <= now]
                self.pending = [c for c in self.pending if c.due > now]
            for c in due:
                self.post_now(c.url, c.body, c.headers)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._client.close()

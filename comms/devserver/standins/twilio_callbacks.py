"""The Twilio stand-in's outbound half: status callbacks and Gather actions, signed as Twilio signs them.

Twilio POSTs form fields to the StatusCallback URL given with a message or a call, each request
carrying ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the account's auth token, of the full
URL followed by every POST field name and value in sorted order
(twilio.com/docs/usage/webhooks/webhooks-security). The signature is computed with the SDK's own
``RequestValidator.compute_signature``, so our intake is tested against the vendor's algorithm.

The sender only ever calls loopback addresses: the URL comes from whoever sent the request, and a
development stand-in must not become a way to make this machine POST elsewhere.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def is_loopback_url(url: str) -> bool:
    """http(s) to a host that is (and resolves only to) a loopback address."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            return False
        infos = socket.getaddrinfo(host, parts.port or 80, proto=socket.IPPROTO_TCP)
    except (ValueError, OSError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


@dataclass
class Callback:
    """One callback the stand-in made (tests read these): where, what, and our answer."""

    url: str
    fields: dict[str, str]
    status: int | None = None  # None: not sent (refused or connection error)
    reply: str = ""
    error: str = ""
    at: float = field(default_factory=time.time)


class CallbackSender:
    """Sends the signed POSTs of one account, in order, on background threads."""

    def __init__(self, account_sid: str, auth_token: Callable[[], str], *, delay: float = 0.05):
        self.account_sid = account_sid
        self.auth_token = auth_token  # read at send time: a test may rotate the token
        self.delay = delay
        self.sent: list[Callback] = []
        self._session = requests.Session()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def signed_post(self, url: str, fields: dict[str, str]) -> Callback:
        record = Callback(url=url, fields=dict(fields))
        if not is_loopback_url(url):
            record.error = "refused: not a loopback URL"
        else:
            signature = RequestValidator(self.auth_token()).compute_signature(url, fields)
            try:
                response = self._session.post(url, data=fields, timeout=10, allow_redirects=False,
                                              headers={"X-Twilio-Signature": signature,
                                                       "User-Agent": "TwilioProxy/1.1"})
                record.status, record.reply = response.status_code, response.text[:2000]
            except requests.RequestException as exc:
                record.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.sent.append(record)
        if record.error or (record.status or 500) >= 400:
            log.warning("twilio stand-in callback to %s: %s", url, record.error or record.status)
        return record

    def run(self, steps: Callable[[], None]) -> None:
        """Run a message's or call's callbacks in order on their own thread (after `delay` each)."""
        thread = threading.Thread(target=steps, daemon=True)
        with self._lock:  # started before it is listed: wait() joins only started threads
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def pause(self) -> None:
        if self.delay:
            time.sleep(self.delay)

    def wait(self, timeout: float = 10.0) -> None:
        """Until every callback started so far is done (tests)."""
        end = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))

    def close(self) -> None:
        self._session.close()

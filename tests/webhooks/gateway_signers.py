"""Stand-ins of Bandwidth, Vonage and Postal whose callbacks the tests hand to our webhook intake.

Each stand-in signs or authenticates its callbacks as the vendor does (Bandwidth: the application's
callback basic auth; Vonage: ``sig`` with the signature secret; Postal: RSA-SHA1 + RSA-SHA256); the
tests take what it queued and post it through Django's test client, or let it post over HTTP to a
live server (tests/webhooks/test_gateways_e2e.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.webhooks.signers import Req


def queued(stand_in) -> list[Req]:
    """The callbacks the stand-in has queued (and not sent), as requests for the test client."""
    pending, stand_in.receipts.pending = stand_in.receipts.pending, []
    return [Req(urlsplit(c.url).path, c.body, c.headers.get("Content-Type", ""),
                {k: v for k, v in c.headers.items() if k != "Content-Type"}) for c in pending]


def post_all(stand_in, client) -> list:
    return [req.send(client) for req in queued(stand_in)]

"""Cost of click/open tracking on the send path, in one process; prints, asserts nothing.

    python bench/tracking.py [N]

Per email: Tracker.apply (links → /c/ tokens, pixel) + the SMTP provider's wire rendering, for the
5-link HTML of `BENCH_E2E_HTML=1 bench/run.py e2e`; with tracking off, on (a batch shares one MIME
rendering, tokens substituted), and on with a fresh MIME rendering per email (what sharing avoids).
No database is touched.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgresql://unused@localhost/unused")
os.environ.setdefault("REDIS_URL", "redis://localhost:1/0")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

BODY = "Hello,\n\nthis is the weekly digest.\n" * 20
HTML = ("<html><head></head><body><p>" + "Hello, this is the weekly digest. " * 20 + "</p>"
        + "".join(f'<p><a href="https://shop.example.com/article/{i}?ref=digest">Article {i}</a></p>' for i in range(5))
        + "</body></html>")


class FakeMessage:
    def __init__(self):
        self.id, self.recipient_address, self.metadata, self.tenant_id = uuid.uuid4(), "a@example.com", {}, None
        self.category, self.channel, self.recipient_id, self.template_key = "transactional", "email", None, ""


def main(n: int) -> None:
    import django

    django.setup()
    from django.conf import settings

    from delivery.providers.base import Content
    from delivery.providers.smtp import SmtpProvider
    from tracking.links import Tracker

    messages = [FakeMessage() for _ in range(n)]
    content = Content(subject="Digest", body=BODY, body_html=HTML)
    for label, enabled, shared in (("off", False, True), ("on, shared MIME", True, True),
                                   ("on, MIME per email", True, False)):
        settings.COMMS_TRACKING_ENABLED = enabled
        provider, tracker = SmtpProvider({}), Tracker(messages)
        started = time.perf_counter()
        for m in messages:
            c = tracker.apply(m, content)
            if not shared:
                c = Content(subject=c.subject, body=c.body, body_html=c.body_html)  # no shared rendering
            provider._serialise(m, c)
        elapsed = time.perf_counter() - started
        print(f"tracking {label}: {elapsed / n * 1e6:.0f} µs/email ({n / elapsed:,.0f} emails/s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)

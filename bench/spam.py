"""SpamAssassin scoring cost: one spamd check of a rendered marketing email, and what the send-time gate
adds per message of a campaign (one check per distinct content, cached per worker process).

    python bench/spam.py [N]

Starts its own spamd (local rules only) on a loopback port. Prints medians of N checks of distinct
contents (wall, and our process's CPU: spamd's own CPU is in another process) and the gate's cost per
message for a 1,000-recipient campaign sharing one content. Prints figures only.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(n: int = 30) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://x@127.0.0.1:1/x")  # no query is made
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    import django

    django.setup()
    from django.conf import settings

    from comms.devserver.spamd import Spamd
    from delivery.deliverability import spam
    from delivery.providers.base import Content

    server = Spamd(Path(tempfile.mkdtemp(prefix="bench-spamd-")))
    settings.COMMS_SPAMD_HOST, settings.COMMS_SPAMD_PORT, settings.COMMS_SPAMD_TIMEOUT = "127.0.0.1", server.port, 30
    try:
        html = ("<html><body><h1>Spring sale</h1>" + "<p>Our new collection is in. Free delivery this week "
                "on orders over 50 EUR. <a href='https://shop.example.com/sale'>Shop now</a></p>" * 8
                + "</body></html>")
        spam.spam_score(subject="warm-up", html=html, text="warm-up")  # the first scan loads spamd's rules
        wall, cpu = [], []
        for i in range(n):
            w0, c0 = time.perf_counter(), time.process_time()
            result = spam.spam_score(subject=f"Spring sale {i}", html=html.replace("Spring", f"Spring {i}"),
                                     text=f"Spring sale {i}: our new collection is in.")
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
            assert result.available, result.error
        print(f"spamd check, distinct content (n={n}): median wall {statistics.median(wall) * 1000:.0f} ms, "
              f"our CPU {statistics.median(cpu) * 1000:.1f} ms, score {result.score}")
        settings.COMMS_SPAM_GATE_THRESHOLD = 5.0
        spam._verdicts.clear()
        content = Content(subject="Spring sale", body="Our new collection is in.", body_html=html)
        now = datetime.now(timezone.utc)
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(1000):
            message = SimpleNamespace(channel="email", category="marketing")
            assert spam.send_gate(message, content, now=now) is None
        per = (time.perf_counter() - w0) / 1000, (time.process_time() - c0) / 1000
        print(f"gate, 1,000-message campaign, one content: {per[0] * 1e6:.0f} µs wall, "
              f"{per[1] * 1e6:.0f} µs CPU per message (one spamd check, then the cache)")
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

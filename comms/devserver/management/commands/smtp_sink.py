import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from comms.devserver.smtp_sink import SinkHandler, start_sink


class Command(BaseCommand):
    help = "Run the local SMTP sink: accepts all mail on loopback and stores it in a Maildir."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.EMAIL_PORT)
        parser.add_argument("--maildir", default=str(settings.VAR_DIR / "mail"))
        parser.add_argument("--discard", action="store_true", help="Count messages only (benchmarks).")
        parser.add_argument("--latency-ms", type=float, default=0.0,
                            help="Answer each DATA this many milliseconds later (a relay's latency; benchmarks).")

    def handle(self, *args, port: int, maildir: str, discard: bool, latency_ms: float = 0.0, **options):
        handler = SinkHandler(None if discard else Path(maildir), keep=False, latency_ms=latency_ms)
        controller = start_sink(handler, port=port)
        where = "discarded (counted only)" if discard else f"stored in {maildir}"
        self.stdout.write(f"SMTP sink on 127.0.0.1:{port}, mail {where}", ending="\n")
        self.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        controller.stop()
        self.stdout.write(f"SMTP sink stopped after {handler.count} messages")

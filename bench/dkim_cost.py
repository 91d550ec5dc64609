"""DKIM signing cost per email, and SMTP throughput with and without signing through a 50 ms relay.

    python bench/dkim_cost.py [--n 2000] [--threads 64] [--latency-ms 50] [--sign-n 400]

(a) CPU µs per signed email (this process's CPU time / emails; medians of 5 runs) for RSA-2048,
    Ed25519 and both (dual signing), on the bytes the SMTP provider really sends (a marketing email
    with List-Unsubscribe headers, ~6 KB HTML + text, through the shared-MIME bulk path), and the share
    of that which is the body hash (bh=, relaxed canonicalisation + SHA-256 of the body).
(b) Sends through ``SmtpProvider.send_prepared`` (what the engine's sending threads call) from a pool of
    `--threads` to the aiosmtpd sink answering each DATA `--latency-ms` later (in its own process):
    emails/s and worker CPU µs per email, unsigned vs dual-signed.
No database or Celery: the keys are generated in memory, the message rows are stand-in objects.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _sink(conn, latency_ms: float) -> None:
    from comms.devserver.embedded import free_port
    from comms.devserver.smtp_sink import SinkHandler, start_sink

    port = free_port()
    controller = start_sink(SinkHandler(None, keep=False, latency_ms=latency_ms), port=port)
    conn.send(port)
    conn.recv()
    controller.stop()


def _message(i: int):
    return SimpleNamespace(id=uuid.uuid4(), recipient_address=f"user{i}@example.org", tenant_id=1,
                           category="marketing", locale="", recipient_id=None, unsubscribe_token=None,
                           preferences_url=None, metadata={"from_email": "News <news@example.com>"}, channel="email")


def _cpu_per(fn, n: int) -> float:
    runs = []
    for _ in range(5):
        start = time.process_time()
        for i in range(n):
            fn(i)
        runs.append((time.process_time() - start) / n * 1e6)
    return statistics.median(runs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="emails per throughput run (default 2000)")
    parser.add_argument("--threads", type=int, default=64, help="sends in flight (default 64)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the relay stand-in's DATA latency")
    parser.add_argument("--sign-n", type=int, default=400, help="signatures per CPU run (default 400)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgresql://unused@127.0.0.1:1/unused")  # never connected
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # never connected
    import django

    django.setup()
    import dkim
    from dkim.canonicalization import CanonicalizationPolicy

    from delivery.deliverability.dkim import SigningKey, sign
    from delivery.deliverability.domains import key_generate
    from delivery.providers.base import Content
    from delivery.providers.smtp import SmtpProvider

    keys = {}
    for alg, name in (("rsa", b"rsa-sha256"), ("ed25519", b"ed25519-sha256")):
        private, _ = key_generate(alg)
        keys[alg] = SigningKey(b"example.com", f"s{alg}".encode(), name, private.encode())
    html = "<html><body>" + "".join(f"<p>Line {i} of the newsletter, with a <a href='https://example.com/{i}'>link"
                                    f"</a>.</p>" for i in range(80)) + "</body></html>"
    content = Content(subject="This week's offers", body="Plain text version. " * 100, body_html=html)
    from preferences import catalogue

    # The built-in categories, cached as if read from the database (this benchmark has none).
    catalogue._cache.update(at=time.monotonic() + 1e9, rows=catalogue.builtin())
    provider = SmtpProvider({"host": "127.0.0.1"})
    wire = provider._serialise(_message(0), content)[1]
    print(f"email size: {len(wire)} bytes")
    both = [keys["rsa"], keys["ed25519"]]
    figures = {name: _cpu_per(lambda i, k=k: sign(wire, k), args.sign_n)
               for name, k in (("rsa-2048", [keys["rsa"]]), ("ed25519", [keys["ed25519"]]), ("dual", both))}
    body = dkim.DKIM(wire).body
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")

    def body_hash(i):
        hashlib.sha256(policy.canonicalize_body(body)).digest()

    figures["body hash (bh=) alone"] = _cpu_per(body_hash, args.sign_n)
    serialise = _cpu_per(lambda i: provider._serialise(_message(i), content), args.sign_n)
    figures["serialise (shared MIME, no signing)"] = serialise
    for name, value in figures.items():
        print(f"(a) CPU per email, {name}: {value:.0f} µs")

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_sink, args=(child, args.latency_ms), daemon=True)
    proc.start()
    port = parent.recv()
    results = {}
    for label, ks in (("unsigned", []), ("dual-signed", both)):
        smtp = SmtpProvider({"host": "127.0.0.1", "port": port, "timeout": 30})
        messages = [_message(i) for i in range(args.n)]
        smtp.send_prepared(messages[0], content, ks)  # warm one session
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(args.threads) as pool:
            outcomes = list(pool.map(lambda m: smtp.send_prepared(m, content, ks), messages))
        wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
        smtp.close()
        bad = [o for o in outcomes if not o.ok]
        results[label] = (args.n / wall, cpu / args.n * 1e6)
        print(f"(b) {label}: {args.n / wall:.0f} emails/s, worker CPU {cpu / args.n * 1e6:.0f} µs/email "
              f"({args.threads} in flight, {args.latency_ms:.0f} ms relay){f', {len(bad)} not sent' if bad else ''}")
    parent.send("stop")
    proc.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

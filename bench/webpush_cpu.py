"""Worker CPU per Web Push through delivery.providers.webpush (pywebpush) against the decrypting stand-in.

    python bench/webpush_cpu.py [--n 2000] [--threads 64] [--profile out.prof]

The stand-in push service runs in its own process (it decrypts every push, which is its CPU, not
ours), so the figure is this process's CPU time divided by the pushes sent: RFC 8291 encryption (an
ephemeral ECDH key per message), VAPID (signed once per origin), TLS and requests, with no database
or Celery around it. Sends go through the same ``send_prepared`` the engine calls.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _stand_in(conn, folder: str) -> None:
    from comms.devserver.standins.webpush import WebPushStandIn

    service = WebPushStandIn(folder=Path(folder))
    key = conn.recv()
    conn.send((service.origin, str(service.cert), [service.subscribe(key) for _ in range(64)]))
    conn.recv()  # until the parent is done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="pushes (default 2000)")
    parser.add_argument("--threads", type=int, default=64, help="sends in flight (default 64)")
    parser.add_argument("--profile", help="write a cProfile of the timed sends here (sends run on the main thread)")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="comms-webpush-cpu-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgresql://unused@127.0.0.1:1/unused")  # never connected
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # never connected
    os.environ.update({"WEBPUSH_VAPID_FILE": f"{folder}/vapid.json", "COMMS_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32"})
    import django

    django.setup()
    from comms import webpush
    from delivery.providers.base import Content
    from delivery.providers.webpush import WebPushProvider

    public, _ = webpush.vapid_generate()
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_stand_in, args=(child, folder), daemon=True)
    proc.start()
    parent.send(public)
    origin, cert, subs = parent.recv()
    provider = WebPushProvider({"ca_bundle": cert, "timeout": 10})
    content = Content(subject="Order shipped", body="Your order 42 is on its way")
    now = datetime.now(timezone.utc)

    def send(i: int) -> bool:
        sub = subs[i % len(subs)]
        message = SimpleNamespace(id=f"00000000-0000-0000-0000-{i:012d}", metadata={"collapse_key": "order-42"},
                                  priority=3, created_at=now, tenant_id=1)
        return provider.send_prepared(message, content, {"targets": [(sub["endpoint"], None, sub["keys"])],
                                                         "none": None}).ok

    with ThreadPoolExecutor(args.threads) as pool:
        assert all(pool.map(send, range(200))), "warm-up sends failed"  # connections, VAPID token, imports
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        ok = sum(map(send, range(200, 200 + args.n)) if profiler else pool.map(send, range(200, 200 + args.n)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
    provider.close()
    parent.send("done")
    proc.join(5)
    print(f"web push via pywebpush: {ok}/{args.n}, {args.threads} in flight: {cpu / args.n * 1e6:,.0f} CPU µs per push, "
          f"{args.n / wall:,.0f} pushes/s wall; load average {os.getloadavg()[0]:.1f}")
    return 0 if ok == args.n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

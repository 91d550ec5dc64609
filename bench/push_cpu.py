"""Worker CPU per push through delivery.providers.fcm (firebase-admin) against the FCM stand-in.

    python bench/push_cpu.py [--n 2000] [--devices 2] [--threads 64] [--latency-ms 0] [--profile out.prof]

The stand-in runs in its own process, so the figure is this process's CPU time (not wall time: the
machine is shared) divided by the messages sent: what the provider and firebase-admin / google-auth /
requests cost per push, with no database or Celery around it. Sends go through the same
``send_prepared`` the engine calls, from a thread pool the size of the engine's in-flight slots.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _stand_in(conn, latency_ms: float) -> None:
    from comms.devserver.standins.fcm import FcmStandIn

    fcm = FcmStandIn(project_id="comms-bench", latency_ms=latency_ms)
    fcm.on_message = None
    conn.send((fcm.url, fcm.service_account()))
    conn.recv()  # until the parent is done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages (default 2000)")
    parser.add_argument("--devices", type=int, default=2, help="devices per message (default 2)")
    parser.add_argument("--threads", type=int, default=64, help="sends in flight (default 64)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the stand-in's answer latency")
    parser.add_argument("--profile", help="write a cProfile of the timed sends here (sends run one at a time "
                        "on the main thread then, as cProfile sees one thread; fan-out threads are not seen)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgresql://unused@127.0.0.1:1/unused")  # never connected
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # never connected
    import django

    django.setup()
    from delivery.providers.base import Content
    from delivery.providers.fcm import FcmProvider

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_stand_in, args=(child, args.latency_ms), daemon=True)
    proc.start()
    url, account = parent.recv()
    provider = FcmProvider({"endpoint": url, "service_account": account, "timeout": 10})
    content = Content(subject="Order", body="Shipped")
    now = datetime.now(timezone.utc)

    def send(i: int) -> bool:
        message = SimpleNamespace(id=f"00000000-0000-0000-0000-{i:012d}", metadata={}, priority=3, created_at=now,
                                  tenant_id=1)
        targets = [(f"token-{i}-{d}", ("android", "ios")[d % 2], None) for d in range(args.devices)]
        return provider.send_prepared(message, content, {"targets": targets, "pruned": {}}).ok

    with ThreadPoolExecutor(args.threads) as pool:
        assert all(pool.map(send, range(200))), "warm-up sends failed"  # token, connections, imports
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # CPU, not the waits on the stand-in
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
    print(f"push via firebase-admin: {ok}/{args.n} messages × {args.devices} devices, {args.threads} in flight, "
          f"stand-in {args.latency_ms:g} ms: {cpu / args.n * 1e6:,.0f} CPU µs per message "
          f"({cpu / (args.n * args.devices) * 1e6:,.0f} per device request), {args.n / wall:,.0f} messages/s wall; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0 if ok == args.n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Conversations over WebSocket (issue 17): figures, no assertions.

    python bench/conversations.py [all|latency|connections|fanout] [--rate 200] [--seconds 10]
                                  [--clients 1000] [--fanout-messages 300]

latency      message send (the message_post service, as the REST view calls it, from `--senders`
             threads) → the message.created frame arriving at a WebSocket client of a uvicorn process
             (loopback, Redis channel layer): p50/p99/max at a fixed open-loop rate (aim: p99 ≤ 50 ms at
             200 msg/s). The time runs from before the database transaction to the frame's arrival.
connections  N clients (distinct recipients) connected and authenticated to ONE uvicorn process: its RSS
             before and after, KB per connection (aim: 1,000 connections in ≤ 300 MB total).
             BENCH_WS_DEFLATE=true measures with per-message deflate on (uvicorn's default).
fanout       one conversation with 100 participants, all connected: messages posted back to back; the
             rate at which every one of the 100 clients has received every message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PY, Env  # noqa: E402
from comms.devserver.embedded import free_port  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def uvicorn(env: Env, *extra: str) -> tuple[str, int]:
    """uvicorn as `make run` starts web-live (per-message deflate off: see docs/operations.md)."""
    import httpx

    port = free_port()
    proc = env.spawn([PY, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--log-level", "warning",
                      "--ws-ping-interval", "60", "--ws-per-message-deflate", os.environ.get("BENCH_WS_DEFLATE", "false"),
                      *extra])
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url, proc.pid
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("uvicorn did not start")


class Clients:
    """WebSocket clients on one asyncio loop in a background thread; records (client, event, time)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.sockets: list = []
        self.received: list[list[tuple[float, dict]]] = []

    def run(self, coro, timeout: float = 600):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _one(self, url: str, token: str, index: int, ready: asyncio.Event | None = None) -> None:
        from websockets.asyncio.client import connect

        ws = await connect(url.replace("http://", "ws://") + f"/ws/conversations?token={token}", open_timeout=60,
                           ping_interval=None, max_queue=None)
        self.sockets.append(ws)
        inbox = self.received[index]
        async for raw in ws:
            now = time.perf_counter()
            event = json.loads(raw)
            if event["type"] in ("ready", "message.created"):
                inbox.append((now, event))

    def connect(self, url: str, tokens: list[str], concurrency: int = 50) -> None:
        start = len(self.received)
        self.received.extend([] for _ in tokens)

        async def all_of_them():
            sem = asyncio.Semaphore(concurrency)

            async def one(i, token):
                async with sem:
                    self.loop.create_task(self._one(url, token, start + i))
                    while not self.received[start + i]:
                        await asyncio.sleep(0.01)

            await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))

        self.run(all_of_them())

    def close(self) -> None:
        async def closing():
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)

        self.run(closing())


def setup_conversation(n: int, prefix: str):
    from comms.conversations.models import Participant
    from comms.conversations.services import ParticipantSpec, conversation_create
    from comms.models import Recipient
    from comms.services import tenant_get_default
    from delivery.inbox import inbox_token

    tenant = tenant_get_default()
    people = Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"{prefix}-{i}") for i in range(n)])
    conversation = conversation_create(tenant=tenant, kind="group", subject=prefix, participants=[
        ParticipantSpec(recipient=r, display_name=r.external_id) for r in people])
    sender = Participant.objects.get(conversation=conversation, recipient=people[0])
    return conversation, sender, [inbox_token(recipient=r) for r in people]


def bench_latency(env: Env, rate: float, seconds: float, senders: int) -> dict:
    """`senders` threads, each posting into its own conversation at rate/senders (one conversation's row
    lock serialises its posts, so one thread cannot offer 200/s on a slow disk); one client receives all."""
    from django.db import connection

    from comms.conversations.models import Participant
    from comms.conversations.services import ParticipantSpec, message_post, participant_add

    url, _ = uvicorn(env)
    convs = [setup_conversation(2, f"lat{k}-{time.monotonic_ns()}") for k in range(senders)]
    reader = Participant.objects.get(conversation=convs[0][0], recipient__external_id__endswith="-1").recipient
    for conversation, _, _ in convs[1:]:
        participant_add(conversation=conversation, spec=ParticipantSpec(recipient=reader))
    clients = Clients()
    clients.connect(url, [convs[0][2][1]])
    for conversation, sender, _ in convs:
        for i in range(20):  # warm-up: connections, caches
            message_post(conversation=conversation, sender=sender, body=f"warm {i}")
    time.sleep(1)
    per_thread = int(rate * seconds / senders)
    sent: dict[str, float] = {}
    start = time.perf_counter() + 0.2
    cpu0 = time.process_time()

    def post(conversation, sender) -> None:
        for i in range(per_thread):
            pause = start + i * senders / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter()
            message, _ = message_post(conversation=conversation, sender=sender, body=f"m{i}")
            sent[str(message.id)] = t0
        connection.close()

    threads = [threading.Thread(target=post, args=(c, s)) for c, s, _ in convs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = per_thread * senders
    post_cpu_ms = (time.process_time() - cpu0) / total * 1000
    achieved = total / (time.perf_counter() - start)
    deadline = time.time() + 30
    inbox = clients.received[0]
    while time.time() < deadline and sum(1 for _, e in inbox if e.get("message", {}).get("id") in sent) < total:
        time.sleep(0.1)
    lat = sorted((t - sent[e["message"]["id"]]) * 1000 for t, e in inbox if e.get("message", {}).get("id") in sent)
    clients.close()
    q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0] * 99
    return {"rate_target": rate, "rate_achieved": round(achieved, 1), "senders": senders, "messages": total,
            "delivered": len(lat), "p50_ms": round(q[49], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(lat[-1], 1) if lat else None, "sender_cpu_ms_per_message": round(post_cpu_ms, 2)}


def bench_connections(env: Env, clients_n: int) -> dict:
    url, pid = uvicorn(env)
    groups = max(1, clients_n // 100)
    tokens: list[str] = []
    for g in range(groups):
        tokens += setup_conversation(clients_n // groups, f"conn{g}-{time.monotonic_ns()}")[2]
    clients = Clients()
    clients.connect(url, tokens[:1])
    time.sleep(1)
    before = rss_mb(pid)
    t0 = time.perf_counter()
    clients.connect(url, tokens[1:])
    connect_s = time.perf_counter() - t0
    time.sleep(2)
    after = rss_mb(pid)
    connected = sum(1 for r in clients.received if r)
    clients.close()
    return {"clients": connected, "connect_seconds": round(connect_s, 1), "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1), "kb_per_connection": round((after - before) * 1024 / max(1, connected - 1), 1)}


def bench_fanout(env: Env, messages: int) -> dict:
    from comms.conversations.services import message_post

    url, _ = uvicorn(env)
    conversation, sender, tokens = setup_conversation(100, f"fan-{time.monotonic_ns()}")
    clients = Clients()
    clients.connect(url, tokens[1:])  # 99 receivers (the sender posts through the service)
    time.sleep(1)
    ids = set()
    t0 = time.perf_counter()
    for i in range(messages):
        ids.add(str(message_post(conversation=conversation, sender=sender, body=f"f{i}")[0].id))
    posted_s = time.perf_counter() - t0
    deadline = time.time() + 120

    def got() -> list[int]:
        return [sum(1 for _, e in r if e.get("message", {}).get("id") in ids) for r in clients.received]

    while time.time() < deadline and min(got()) < messages:
        time.sleep(0.2)
    counts = got()
    last = max(t for r in clients.received for t, e in r if e.get("message", {}).get("id") in ids)
    clients.close()
    all_s = last - t0
    return {"participants": 100, "connected_receivers": len(counts), "messages": messages,
            "posted_per_s": round(messages / posted_s, 1), "all_delivered_per_s": round(messages / all_s, 1),
            "frames_per_s": round(sum(counts) / all_s), "min_received": min(counts),
            "complete": min(counts) == messages}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", nargs="?", default="all", choices=["all", "latency", "connections", "fanout"])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--fanout-messages", type=int, default=300)
    args = parser.parse_args()
    env = Env()
    print(f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cpus", flush=True)
    try:
        if args.what in ("all", "latency"):
            print("latency", json.dumps(bench_latency(env, args.rate, args.seconds, args.senders)), flush=True)
        if args.what in ("all", "connections"):
            print("connections", json.dumps(bench_connections(env, args.clients)), flush=True)
        if args.what in ("all", "fanout"):
            print("fanout", json.dumps(bench_fanout(env, args.fanout_messages)), flush=True)
    finally:
        for proc in env.procs:
            env.stop(proc)
        env.pg.stop() if hasattr(env.pg, "stop") else None
        env.redis.stop() if hasattr(env.redis, "stop") else None


if __name__ == "__main__":
    main()

"""Fault injection (`make chaos`): R1-R6 against the real system on loopback, bounded in time.

    python bench/chaos.py [--quick] [r1 r2 r3 r4 r5 r6]

Each scenario prints its figures and the run writes docs/results/chaos.json, from which
bench/report.py generates docs/reliability.md (test -> what it does -> figure -> bar -> pass/fail).
Nothing here is mocked: real PostgreSQL (stopped and started with pg_ctl), real redis-server
(SIGKILLed), real Celery workers (SIGKILLed), real gunicorn, real SMTP and HTTP on loopback.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import signal
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone as dt_timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_infra import ROOT, Cluster, say, sink_counts, wait_until  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "chaos.json"
# Short timers so a run takes minutes: leases, housekeeping ticks, retries and client timeouts.
CHAOS_ENV = {
    "COMMS_LEASE_SECONDS": "5", "COMMS_CRASH_BACKOFF_SECONDS": "1", "COMMS_HOUSEKEEPING_SECONDS": "1",
    "COMMS_RETRY_BACKOFF": "1,2,4,8", "EMAIL_TIMEOUT": "2", "COMMS_WEBHOOK_TIMEOUT": "2",
    "COMMS_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32", "COMMS_POSTMARK_WEBHOOK_AUTH": "postmark:chaos-storm-secret",
    "COMMS_PUBLIC_RATES": '{"webhooks": "1000000/min"}',
}
CLIENT_TIMEOUT = 2.0
R3_LEASE_SECONDS = 60
# R1's relay answers each DATA this much later (after it has the message), as a real relay does
# (30-150 ms): with the concurrent engine that wait is where most sends are when a worker dies.
RELAY_MS = 50.0


def tenant():
    from comms.services import tenant_get_default

    return tenant_get_default()


def bulk(n: int, *, subject: str, channel: str = "email", prefix: str = "user") -> list[str]:
    from delivery.models import Message
    from delivery.services import SendSpec, message_bulk_enqueue

    result = message_bulk_enqueue(tenant=tenant(), spec=SendSpec(channel=channel, subject=subject, body="Hello " * 40,
                                                                 priority=2),
                                  recipients=[{"to": f"{prefix}{i}@example.com"} for i in range(n)])
    return [str(i) for i in Message.objects.filter(batch_id=result.batch.id).values_list("id", flat=True)]


def count_status(ids: list[str], status: str) -> int:
    from delivery.models import Message

    total = 0
    for i in range(0, len(ids), 20_000):
        total += Message.objects.filter(id__in=ids[i:i + 20_000], status=status).count()
    return total


def delivery_figures(ids: list[str], counts: dict[str, int]) -> dict:
    """Lost = accepted but never at the receiver; duplicates = extra copies the receiver got."""
    wanted = set(ids)
    lost = len(wanted - counts.keys())
    dups = sum(n - 1 for k, n in counts.items() if k in wanted and n > 1)
    return {"accepted": len(ids), "delivered_unique": len(wanted & counts.keys()), "lost": lost,
            "duplicates": dups, "duplicate_rate": round(dups / max(1, len(ids)), 6)}


def lease_figures(ids: list[str]) -> dict:
    from delivery.models import DeliveryLog

    rows = []
    for i in range(0, len(ids), 20_000):
        rows += list(DeliveryLog.objects.filter(message_id__in=ids[i:i + 20_000], event="lease_expired")
                     .values_list("message_id", "at", "data"))
    return {"rows_returned_by_lease_expiry": len(rows),
            "re_executed_sends": sum(1 for _, _, d in rows if d.get("in_flight")), "_rows": rows}


def wait_all_sent(ids: list[str], timeout: float) -> bool:
    return bool(wait_until(lambda: count_status(ids, "sent") >= len(ids), timeout))


# --- R1 ----------------------------------------------------------------------------------------------
def r1(c: Cluster, n: int, timeout: float, relay_ms: float = RELAY_MS) -> dict:
    import psutil

    from django.conf import settings

    log = c.root / "r1.log"
    c.sink(log, latency_ms=relay_ms)
    names = c.workers(2, prefix="r1-worker", pool="prefork")  # 2 pools × 2 processes that send
    c.beat()
    ids = bulk(n, subject="R1")
    started = time.monotonic()
    kills: list[datetime] = []
    deadline = started + timeout
    # Counting 50,000 rows takes seconds on a loaded machine; done in its own thread so the kills
    # keep their 2 s cadence (in the loop they came every ~6 s).
    drained = threading.Event()

    def watch() -> None:
        from django.db import connection

        try:
            while not drained.is_set() and time.monotonic() < deadline:
                if count_status(ids, "sent") >= n:
                    drained.set()
                time.sleep(0.5)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    next_kill = started
    while time.monotonic() < deadline:
        next_kill += 2.0
        if drained.wait(max(0.0, next_kill - time.monotonic())):
            break
        # The processes that do the sending are the pool children; the pool forks a replacement.
        children = [child for name in names if c.sup.procs[name].poll() is None
                    for child in psutil.Process(c.sup.procs[name].pid).children()]
        if children:
            try:
                random.choice(children).kill()  # SIGKILL
                kills.append(datetime.now(dt_timezone.utc))
            except psutil.NoSuchProcess:
                pass
    elapsed = time.monotonic() - started
    drained.set()
    watcher.join()
    done = count_status(ids, "sent") >= n
    time.sleep(1.0)
    figures = {**delivery_figures(ids, sink_counts(log)), **lease_figures(ids), "kills": len(kills),
               "drain_s": round(elapsed, 1), "all_sent": done}
    rows = figures.pop("_rows")
    # Two kinds of orphan: rows the dead worker never reached keep their place at the head of the
    # queue; the row it was sending is treated like a retry (crash backoff, behind the backlog).
    # Recovery of one orphaning = the kill before its reap -> the message's next logged event (sent,
    # or reaped again after a later kill: then it had been claimed again, the orphan recovered).
    from delivery.models import DeliveryLog

    timeline: dict = {}
    for message_id, at in DeliveryLog.objects.filter(message_id__in=[r[0] for r in rows],
                                                     event__in=["sent", "lease_expired"]).values_list("message_id", "at"):
        timeline.setdefault(message_id, []).append(at)
    worst = {False: 0.0, True: 0.0}
    for message_id, at, data in rows:
        before = [k for k in kills if k <= at]
        after = sorted(t for t in timeline.get(message_id, []) if t > at)
        if before and after:
            kind = bool(data.get("in_flight"))
            worst[kind] = max(worst[kind], (after[0] - before[-1]).total_seconds())
    figures["worst_orphan_recovery_s"] = round(worst[False], 1)
    figures["worst_in_flight_recovery_s"] = round(worst[True], 1)
    # What the in-flight window predicts: a process dies with about (its send rate × the time a send
    # spends after the relay has the message and before the outcome is written) sends the relay has
    # taken; that time is at least the relay's latency. The hard bound is the per-provider slots.
    per_process = n / max(elapsed, 0.1) / 4
    figures.update(relay_ms=relay_ms, send_concurrency=settings.COMMS_SEND_CONCURRENCY,
                   provider_concurrency=settings.COMMS_PROVIDER_CONCURRENCY,
                   emails_per_s=round(n / max(elapsed, 0.1), 1),
                   duplicates_per_kill=round(figures["duplicates"] / max(1, len(kills)), 2),
                   predicted_per_kill=round(per_process * relay_ms / 1000, 2),
                   bound_per_kill=settings.COMMS_PROVIDER_CONCURRENCY)
    c.sup.remove_all()
    ok = done and figures["lost"] == 0 and figures["duplicate_rate"] <= 0.001
    return {
        "id": "R1", "name": "worker kill -9 during a drain",
        "does": f"SIGKILL a random one of the 4 sending worker processes (2 Celery prefork pools × 2) every 2 s "
                f"(the pool forks a replacement) while {n:,} emails drain into an SMTP relay answering each DATA "
                f"after {relay_ms:g} ms; up to {settings.COMMS_PROVIDER_CONCURRENCY} sends in flight per "
                f"process; lease {CHAOS_ENV['COMMS_LEASE_SECONDS']} s, beat every 1 s",
        "figure": (f"{figures['kills']} kills; lost {figures['lost']}; duplicates {figures['duplicates']} "
                   f"({figures['duplicate_rate']:.3%}); re-executed sends {figures['re_executed_sends']}; rows "
                   f"returned by lease expiry {figures['rows_returned_by_lease_expiry']}; worst recovery of an orphan "
                   f"the worker never reached {figures['worst_orphan_recovery_s']} s, of the row it was sending "
                   f"(a retry, behind the backlog) {figures['worst_in_flight_recovery_s']} s; "
                   f"drain {figures['drain_s']} s ({figures['emails_per_s']} emails/s); duplicates per kill "
                   f"{figures['duplicates_per_kill']} (in-flight window predicts ~{figures['predicted_per_kill']}, "
                   f"bound {figures['bound_per_kill']})"),
        "bar": "0 lost; duplicates ≤ 0.1 %", "pass": ok, "figures": figures,
    }


# --- R2 ----------------------------------------------------------------------------------------------
def r2(c: Cluster, n: int, timeout: float) -> dict:
    runs = {}
    for persistent in (False, True):
        label = "with persistence (AOF, fsync always)" if persistent else "without persistence"
        c.redis.kill()
        c.redis.wipe()
        c.redis.start(persistent=persistent)
        log = c.root / f"r2-{persistent}.log"
        c.sink(log)
        c.workers(2, prefix="r2-worker")
        c.beat()
        ids = bulk(n, subject=f"R2 {persistent}", prefix=f"r2{int(persistent)}-")
        wait_until(lambda: count_status(ids, "sent") >= n // 5, timeout)
        sent_before = count_status(ids, "sent")
        c.redis.kill()
        time.sleep(3.0)
        c.redis.start()
        restarted = time.monotonic()
        done = wait_all_sent(ids, timeout)
        recovery = time.monotonic() - restarted
        time.sleep(1.0)
        figures = {**delivery_figures(ids, sink_counts(log)), "sent_before_kill": sent_before,
                   "all_sent": done, "redis_down_s": 3.0, "restart_to_all_sent_s": round(recovery, 1)}
        runs["persistent" if persistent else "volatile"] = figures
        say(f"   R2 {label}: {json.dumps(figures)}")
        c.sup.remove_all()
    ok = all(r["all_sent"] and r["lost"] == 0 for r in runs.values())
    v, p = runs["volatile"], runs["persistent"]
    return {
        "id": "R2", "name": "Redis SIGKILL mid-drain",
        "does": f"{n:,} emails draining with 2 workers and beat; after a fifth is sent, SIGKILL redis-server, "
                "keep it down 3 s, start it again; once without persistence (every queued task and wake-up "
                "flag is gone) and once with AOF",
        "figure": (f"without persistence: lost {v['lost']}, duplicates {v['duplicates']}, all sent "
                   f"{v['restart_to_all_sent_s']} s after restart; with AOF: lost {p['lost']}, duplicates "
                   f"{p['duplicates']}, all sent {p['restart_to_all_sent_s']} s after restart"),
        "bar": "0 lost, both modes", "pass": ok, "figures": runs,
    }


# --- R3 ----------------------------------------------------------------------------------------------
def api_key() -> str:
    from comms.models import Scope
    from comms.services import api_key_create

    return api_key_create(tenant=tenant(), name="chaos", scopes=[Scope.ADMIN])[1]


def r3(c: Cluster, load_s: float, timeout: float) -> dict:
    import httpx

    log = c.root / "r3.log"
    c.sink(log)
    # The production-sized lease (not the 5 s that makes R1 quick): a worker whose outcome write hits
    # the outage retries it for most of a lease, so the outage must be shorter than that to be bridged.
    c.workers(2, prefix="r3-worker", COMMS_LEASE_SECONDS=str(R3_LEASE_SECONDS))
    c.beat()
    url = c.web()
    key = api_key()
    stop = threading.Event()
    results: list[tuple[float, int, str, str, str]] = []  # (t, status, code, id, retry-after)
    lock = threading.Lock()
    t0 = time.monotonic()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = http.post("/api/v1/messages", json={"channel": "email", "to": f"r3-{k}-{i}@example.com",
                                                            "subject": "R3", "body": "during a database restart"})
                    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                    row = (time.monotonic() - t0, r.status_code, body.get("code", ""), body.get("id", ""),
                           r.headers.get("Retry-After", ""))
                except httpx.HTTPError as exc:
                    row = (time.monotonic() - t0, 0, type(exc).__name__, "", "")
                with lock:
                    results.append(row)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(load_s / 3)
    down_at = time.monotonic() - t0
    c.pg_stop()
    time.sleep(5.0)
    c.pg_start()
    up_at = time.monotonic() - t0
    time.sleep(load_s * 2 / 3)
    stop.set()
    for t in threads:
        t.join()
    from django.db import connection

    connection.close()
    accepted = [r[3] for r in results if r[1] == 202]
    done = wait_all_sent(accepted, timeout)
    time.sleep(1.0)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r[1])] = statuses.get(str(r[1]), 0) + 1
    unavailable = [r for r in results if r[1] == 503]
    typed = [r for r in unavailable if r[2] == "COMMS_UNAVAILABLE" and r[4]]
    other_5xx = sum(1 for r in results if r[1] >= 500 and r[1] != 503)
    figures = {**delivery_figures(accepted, sink_counts(log)), "requests": len(results), "by_status": statuses,
               "503_typed_with_retry_after": len(typed), "503_untyped": len(unavailable) - len(typed),
               "other_5xx": other_5xx, "connection_errors": statuses.get("0", 0), "all_sent": done,
               "pg_down_s": round(up_at - down_at, 1),
               "during_outage": sum(1 for r in results if down_at <= r[0] <= up_at)}
    c.sup.remove_all()
    ok = (done and figures["lost"] == 0 and other_5xx == 0 and figures["503_untyped"] == 0
          and figures["503_typed_with_retry_after"] > 0)
    return {
        "id": "R3", "name": "PostgreSQL restart under API load",
        "does": f"4 clients POST /api/v1/messages for {load_s:.0f} s against gunicorn (2×4); PostgreSQL is "
                "stopped (pg_ctl -m fast) for 5 s in the middle, then started; workers (lease "
                f"{R3_LEASE_SECONDS} s) and beat keep running",
        "figure": (f"{figures['requests']} requests: {statuses.get('202', 0)} × 202, "
                   f"{figures['503_typed_with_retry_after']} × 503 COMMS_UNAVAILABLE with Retry-After, "
                   f"{other_5xx} other 5xx, {figures['connection_errors']} connection errors; "
                   f"202s lost {figures['lost']}, duplicates {figures['duplicates']}"),
        "bar": "every 202 delivered; while down only typed 503 (no other 5xx)", "pass": ok, "figures": figures,
    }


# --- R4 ----------------------------------------------------------------------------------------------
def faulted(comms_id: str, rate: float) -> bool:
    """The sinks' own choice (same hash): which ids meet a fault on their first delivery."""
    return int(hashlib.sha256(comms_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < 2 * rate


class FaultyHttp:
    """HTTP receiver: first sight of a webhook-id -> at `rate` each, answer too late or reset."""

    def __init__(self, rate: float, delay: float):
        self.counts: dict[str, int] = {}
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wid = self.headers.get("webhook-id", "unknown")
                with lock:
                    first = wid not in outer.counts
                    outer.counts[wid] = outer.counts.get(wid, 0) + 1
                roll = int(hashlib.sha256(wid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
                if first and roll < rate:
                    time.sleep(delay)
                elif first and roll < 2 * rate:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def r4(c: Cluster, n: int, timeout: float, rate: float = 0.1) -> dict:
    from delivery.services import SendSpec, message_enqueue
    from delivery.services.webhooks import endpoint_create

    log = c.root / "r4.log"
    c.sink(log, fault_rate=rate, delay=CLIENT_TIMEOUT + 1.5)
    receiver = FaultyHttp(rate, CLIENT_TIMEOUT + 1.5)
    endpoint_create(tenant=tenant(), url=receiver.url)
    email_ids = bulk(n, subject="R4", prefix="r4-")
    hook_ids = [str(message_enqueue(tenant=tenant(), spec=SendSpec(channel="webhook", to=receiver.url,
                                                                 body=json.dumps({"n": i}), priority=2))[0].id)
                for i in range(n)]
    c.workers(2, prefix="r4-worker")
    c.beat()
    done = wait_all_sent(email_ids + hook_ids, timeout)
    time.sleep(1.0)
    smtp = {**delivery_figures(email_ids, sink_counts(log)), "faults_injected": sum(faulted(i, rate) for i in email_ids)}
    http = {**delivery_figures(hook_ids, receiver.counts), "faults_injected": sum(faulted(i, rate) for i in hook_ids)}
    from django.db.models import Count

    from delivery.models import Message

    for figures, ids in ((smtp, email_ids), (http, hook_ids)):
        figures["final_status"] = {f"{st}/{code or '-'}": n for st, code, n in Message.objects.filter(id__in=ids)
                                   .values_list("status", "failure_code").annotate(n=Count("id"))}
    receiver.close()
    c.sup.remove_all()
    c.sink(c.root / "after-r4.log")
    ok = done and smtp["lost"] == http["lost"] == 0 and smtp["duplicates"] <= smtp["faults_injected"] \
        and http["duplicates"] <= http["faults_injected"]
    return {
        "id": "R4", "name": "provider slower than the client timeout / reset after send",
        "does": f"{n} emails (SMTP) and {n} webhooks (HTTP); on first delivery {rate:.0%} of messages get their "
                f"reply {CLIENT_TIMEOUT + 1.5:.1f} s late (client timeout {CLIENT_TIMEOUT:.0f} s) and {rate:.0%} a TCP "
                "reset, both after the receiver has the message",
        "figure": (f"SMTP: {smtp['faults_injected']} faults -> {smtp['duplicates']} duplicates, lost {smtp['lost']}; "
                   f"HTTP webhook: {http['faults_injected']} faults -> {http['duplicates']} duplicates, "
                   f"lost {http['lost']}"),
        "bar": "0 lost; duplicates reported per provider, at most one per fault", "pass": ok,
        "figures": {"smtp": smtp, "webhook_http": http, "all_sent": done},
    }


# --- R5 ----------------------------------------------------------------------------------------------
def r5(c: Cluster, n: int, timeout: float) -> dict:
    from delivery.models import Message
    from delivery.services import SendSpec, message_enqueue
    from delivery.services.engine import max_attempts

    log = c.root / "r5.log"
    c.sink(log)
    ids = bulk(n, subject="R5", prefix="r5-")
    poison, _ = message_enqueue(tenant=tenant(), spec=SendSpec(channel="email", to="victim@example.com",
                                                                subject="POISON", body="x", priority=2))
    started = time.monotonic()
    c.workers(1, prefix="r5-worker", pool="prefork",
              COMMS_EMAIL_PROVIDER="tests.reliability.poison.PoisonSmtpProvider")
    c.beat()
    dead = wait_until(lambda: Message.objects.filter(id=poison.id, status="dead").exists(), timeout)
    to_dlq = time.monotonic() - started
    done = wait_all_sent(ids, 60)
    poison.refresh_from_db()
    time.sleep(1.0)
    figures = {**delivery_figures(ids, sink_counts(log)), "poison_status": poison.status,
               "poison_attempts": poison.attempt_count, "budget": max_attempts(2), "others_all_sent": done,
               "others_charged_extra_attempts": Message.objects.filter(id__in=ids, attempt_count__gt=1).count(),
               "time_to_dlq_s": round(to_dlq, 1)}
    c.sup.remove_all()
    ok = bool(dead) and done and figures["lost"] == 0 and figures["duplicates"] == 0 \
        and poison.attempt_count == max_attempts(2)
    return {
        "id": "R5", "name": "poison message that crashes its worker",
        "does": f"1 message whose send SIGKILLs the worker process (a native crash) among {n} others; Celery "
                "prefork pool replaces the child, beat reaps the lease",
        "figure": (f"poison {figures['poison_status']} after {figures['poison_attempts']} crashes (budget "
                   f"{figures['budget']}) in {figures['time_to_dlq_s']} s; others lost {figures['lost']}, "
                   f"duplicates {figures['duplicates']}, charged an extra attempt "
                   f"{figures['others_charged_extra_attempts']}"),
        "bar": "dead-lettered after exactly its budget; others 0 lost, 0 duplicates", "pass": ok,
        "figures": figures,
    }


# --- R6 ----------------------------------------------------------------------------------------------
def r6(c: Cluster, keys: int) -> dict:
    import httpx

    from delivery.models import Message

    c.sink(c.root / "r6.log")
    url = c.web(workers=3, threads=8)
    key = api_key()
    statuses: dict[str, int] = {}
    per_key = []
    retries: list[int] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      limits=httpx.Limits(max_connections=60)) as http:
        for k in range(keys):
            idem = f"storm-{k}"

            def post(_):
                for _attempt in range(5):  # a client that loses its connection retries with the same key
                    try:
                        return http.post("/api/v1/messages", headers={"Idempotency-Key": idem},
                                         json={"channel": "email", "to": f"storm{k}@example.com", "subject": "once",
                                               "body": "one message"})
                    except httpx.TransportError:
                        retries.append(1)
                raise RuntimeError("no answer after 5 tries")

            with ThreadPoolExecutor(50) as pool:
                responses = list(pool.map(post, range(50)))
            for r in responses:
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            per_key.append((Message.objects.filter(idempotency_key=idem).count(),
                            len({r.json().get("id") for r in responses if r.status_code in (200, 202)})))
    storm = webhook_storm(url, events=keys)
    c.sup.remove_all()
    figures = {"keys": keys, "requests": keys * 50, "by_status": statuses,
               "messages_per_key": sorted({m for m, _ in per_key}), "ids_per_key": sorted({i for _, i in per_key}),
               "client_retries_after_connection_errors": len(retries), "webhook_storm": storm}
    ok = figures["messages_per_key"] == [1] and figures["ids_per_key"] == [1] and set(statuses) <= {"200", "202"} \
        and storm["applied_per_event"] == [1] and storm["out_of_order_same_outcome"]
    return {
        "id": "R6", "name": "idempotency storm",
        "does": f"{keys} rounds of 50 concurrent POST /api/v1/messages sharing one Idempotency-Key per round "
                f"(gunicorn 3×8); {keys} provider events each posted 50 times concurrently (signed Postmark "
                "bounces) plus delivery/bounce pairs in both orders, then processed twice",
        "figure": (f"{figures['requests']} requests ({', '.join(f'{v} × {k}' for k, v in sorted(statuses.items()))});"
                   f" messages per key {figures['messages_per_key']}, distinct ids per key {figures['ids_per_key']}; "
                   f"webhook storm: {storm['requests']} signed Postmark requests for {storm['events']} events -> "
                   f"events applied per event {storm['applied_per_event']}; out-of-order pairs end like in-order "
                   f"pairs: {storm['out_of_order_same_outcome']}"),
        "bar": "exactly 1 message per key, every answer 200/202 with the same id; each webhook event applied once, "
               "arrival order irrelevant", "pass": ok, "figures": figures,
    }


def webhook_storm(url: str, *, events: int) -> dict:
    """Signed Postmark webhooks: each bounce 50× at once, and delivery/bounce pairs in both orders."""
    import base64

    import httpx

    from delivery.models import Message
    from delivery.services import drain_all
    from tests.webhooks.signers import fixture
    from tracking.models import MessageEvent
    from webhooks.services import webhooks_process_pending

    auth = os.environ["COMMS_POSTMARK_WEBHOOK_AUTH"]
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
               "Content-Type": "application/json"}
    ids = bulk(events + 2, subject="R6", prefix="r6-")
    drain_all()
    messages = list(Message.objects.filter(id__in=ids).order_by("id"))
    targets, in_order, reverse = messages[:events], messages[events], messages[events + 1]

    def bounce(m, n: int) -> str:
        return fixture("postmark/bounce.json", id=n, bounce_kind="HardBounce", ref=m.provider_ref,
                       address=m.recipient_address)

    def delivery(m) -> str:
        return fixture("postmark/delivery.json", ref=m.provider_ref, address=m.recipient_address)

    codes: dict[str, int] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=60)) as http:
        def post(body: str) -> None:
            for _attempt in range(5):
                try:
                    status = str(http.post("/webhooks/postmark", content=body).status_code)
                    break
                except httpx.TransportError:
                    status = "connection error"
            codes[status] = codes.get(status, 0) + 1

        for n, m in enumerate(targets):
            with ThreadPoolExecutor(50) as pool:
                list(pool.map(post, [bounce(m, 10_000 + n)] * 50))
        for body in (delivery(in_order), bounce(in_order, 1), bounce(reverse, 2), delivery(reverse)):
            post(body)
    webhooks_process_pending()
    webhooks_process_pending()
    applied = sorted({MessageEvent.objects.filter(message=m).count() for m in targets})
    in_order.refresh_from_db()
    reverse.refresh_from_db()
    return {"events": events, "requests": events * 50 + 4, "by_status": codes, "applied_per_event": applied,
            "out_of_order_same_outcome": in_order.status == reverse.status,
            "pair_statuses": [in_order.status, reverse.status]}


SCENARIOS = ["r1", "r2", "r3", "r4", "r5", "r6"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run of the harness)")
    parser.add_argument("--relay-ms", type=float, default=RELAY_MS,
                        help=f"R1's relay latency per DATA (default {RELAY_MS:g}; 0 = loopback sink)")
    parser.add_argument("scenarios", nargs="*", default=SCENARIOS)
    args = parser.parse_args(argv)
    q = args.quick
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop = clean up every child and server
    cluster = Cluster(**CHAOS_ENV)
    results = []
    plan = {
        "r1": lambda: r1(cluster, 5_000 if q else 50_000, 1200, args.relay_ms),
        "r2": lambda: r2(cluster, 2_000 if q else 10_000, 300),
        "r3": lambda: r3(cluster, 12 if q else 18, 300),
        "r4": lambda: r4(cluster, 100 if q else 300, 400),
        "r5": lambda: r5(cluster, 200 if q else 1_000, 300),
        "r6": lambda: r6(cluster, 5 if q else 20),
    }
    started = time.monotonic()
    try:
        say(f"chaos: {os.cpu_count()} cores, PostgreSQL + Redis + SMTP sink + workers on loopback; "
            f"{'quick' if q else 'full'} sizes")
        for name in args.scenarios:
            t, load = time.monotonic(), os.getloadavg()[0]
            say(f"-- {name.upper()} …")
            result = plan[name]()
            result["seconds"] = round(time.monotonic() - t, 1)
            result["load_average"] = [round(load, 1), round(os.getloadavg()[0], 1)]
            result["size"] = "quick" if q else "full"
            results.append(result)
            say(f"{result['id']} {'PASS' if result['pass'] else 'FAIL'}: {result['figure']}")
    finally:
        cluster.close()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged = {r["id"]: r for r in previous.get("results", [])} if set(args.scenarios) != set(SCENARIOS) else {}
    merged.update({r["id"]: r for r in results})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "generated_at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}", "quick": q,
        "total_seconds": round(time.monotonic() - started, 1),
        "results": [merged[k] for k in sorted(merged)],
    }, indent=2, default=str) + "\n")
    from bench.report import write_reliability

    write_reliability()
    say(f"wrote {RESULTS.relative_to(ROOT)} and docs/reliability.md")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Throughput against providers that take their time (issue 14): figures, no assertions.

    python bench/latency.py [all|email|channels|cpu] [--n 20000] [--channel-n 6000] [--rounds 1] [--no-po]

email     20,000 emails through an SMTP relay answering each DATA after 50 ms, `make run`'s bulk pool
          (2 worker processes, nice 5): comms emails/s; django-post-office (`send_queued_mail
          --processes 2`, its default threads and tuned); the loopback figure of the same run (a sink
          answering at once); the ratios.
channels  SMS through the Twilio SDK to a stand-in answering in 150 ms, push through firebase-admin to
          an FCM stand-in answering in 80 ms (two devices per recipient), webhooks to a receiver
          answering in 100 ms; each with the physical limit (in-flight slots / latency).
cpu       worker CPU time per email on loopback (process CPU of the worker tree, not wall time: the
          machine is shared), with the serial engine (COMMS_SEND_CONCURRENCY=1) and the concurrent one.

Each figure is one run; --rounds repeats the email runs alternately (A/B) and prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BODY, PY, SUBJECT, Env, bulk_enqueue, wait_sent  # noqa: E402
from comms.devserver.embedded import free_port  # noqa: E402

RELAY_MS, SMS_MS, PUSH_MS, HOOK_MS = 50, 150, 80, 100
PROCESSES = 2


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu.get(current, 0.0)
        todo.extend(child for child, up in parent.items() if up == current)
    return total


def bulk_pool(env: Env, name: str, **extra_env: str) -> subprocess.Popen:
    """The bulk pool as `make run` starts it (comms/devserver/up.py): P2-P4, 2 processes, nice 5."""
    cmd = [PY, "-m", "celery", "-A", "config", "worker", "-Q", "p2,p3,p4", "-c", str(PROCESSES), "-n",
           f"{name}@bench", "--prefetch-multiplier", "1", "-O", "fair", "-l", "warning",
           "--without-gossip", "--without-mingle", "--without-heartbeat"]
    proc = env.spawn(cmd, nice=5, **extra_env)
    time.sleep(5)  # imports and the prefork children
    return proc


def sink(env: Env, latency_ms: float) -> int:
    port = free_port()
    env.spawn([PY, "manage.py", "smtp_sink", "--port", str(port), "--discard", "--latency-ms", str(latency_ms)])
    time.sleep(1.0)
    return port


def comms_email(env: Env, n: int, port: int, label: str, **extra_env: str) -> dict:
    from delivery.models import Message

    worker = bulk_pool(env, label, EMAIL_PORT=str(port), **extra_env)
    cpu_before = tree_cpu(worker.pid)
    started = time.perf_counter()
    bulk_enqueue(n, priority=3, prefix=label)
    done = wait_sent(n)
    cpu = tree_cpu(worker.pid) - cpu_before
    env.stop(worker)
    Message.objects.all().delete()
    return {"emails_per_s": round(n / (done - started), 1), "worker_cpu_us_per_email": round(cpu / n * 1e6)}


def post_office_email(n: int, port: int, threads: int) -> dict:
    from post_office import mail
    from post_office.models import Email

    started = time.perf_counter()
    mail.send_many([{"recipients": [f"po{i}@example.com"], "sender": "bench@example.com", "subject": SUBJECT,
                     "message": BODY} for i in range(n)])
    subprocess.run([PY, "manage.py", "send_queued_mail", "--processes", str(PROCESSES)], cwd=ROOT, check=True,
                   env={**os.environ, "EMAIL_PORT": str(port), "BENCH_PO_THREADS": str(threads)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    sent = Email.objects.filter(status=0).count()
    Email.objects.all().delete()
    return {"emails_per_s": round(sent / elapsed, 1), "sent": sent, "threads_per_process": threads}


def bench_email(env: Env, n: int, rounds: int, po_tuned: int, po: bool = True) -> dict:
    relay, loopback = sink(env, RELAY_MS), env.sink_port
    runs: dict[str, list[dict]] = {"relay": [], "loopback": []}
    for i in range(rounds):  # alternate A/B so a neighbour's load falls on both
        for kind in (("relay", "loopback") if i % 2 == 0 else ("loopback", "relay")):
            runs[kind].append(comms_email(env, n, relay if kind == "relay" else loopback, f"{kind}{i}"))
            print(f"  comms {kind} round {i + 1}: {json.dumps(runs[kind][-1])} (load {load()})", flush=True)
    med = {k: statistics.median(r["emails_per_s"] for r in v) for k, v in runs.items()}
    if not po:
        print("email through a 50 ms relay (comms only):", json.dumps(med), flush=True)
        return med
    po_default = post_office_email(n, relay, 5)
    print(f"  post-office default: {json.dumps(po_default)} (load {load()})", flush=True)
    po_best = post_office_email(n, relay, po_tuned)
    print(f"  post-office tuned: {json.dumps(po_best)} (load {load()})", flush=True)
    best_po = max(po_default["emails_per_s"], po_best["emails_per_s"])
    result = {
        "emails": n, "relay_ms": RELAY_MS, "processes": PROCESSES, "rounds": rounds,
        "comms_relay_emails_per_s": med["relay"], "comms_loopback_emails_per_s": med["loopback"],
        "relay_vs_loopback": round(med["relay"] / med["loopback"], 2),
        "post_office_default_emails_per_s": po_default["emails_per_s"],
        "post_office_tuned_emails_per_s": po_best["emails_per_s"], "post_office_tuned_threads": po_tuned,
        "ratio_vs_post_office_default": round(med["relay"] / po_default["emails_per_s"], 1),
        "ratio_vs_post_office_tuned": round(med["relay"] / best_po, 1),
        "aims": "≥ 600 emails/s, ≥ 0.90 of loopback, ≥ 15× post-office",
    }
    print("email through a 50 ms relay:", json.dumps(result), flush=True)
    return result


def wait_done(n: int, timeout: float = 600) -> float:
    """Until n rows are sent, acting as beat (a transient failure's retry is due in a minute and only
    housekeeping wakes a worker for it)."""
    from django.db import connection

    from delivery.models import Message
    from delivery.services import housekeeping_run

    deadline, tick = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        if Message.objects.filter(status="sent").count() >= n:
            return time.perf_counter()
        if time.monotonic() - tick > 5:
            housekeeping_run()
            tick = time.monotonic()
        connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"only {Message.objects.filter(status='sent').count()} of {n} sent")


def bench_channels(env: Env, n: int, only: set[str] | None = None) -> dict:
    from django.conf import settings

    from comms.services import tenant_get_default
    from delivery.models import DeliveryLog, Message
    from delivery.services import SendSpec, message_bulk_enqueue

    tenant = tenant_get_default()
    slots = min(settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY)
    out = {}

    def run(label: str, spec: SendSpec, recipients: list[dict], latency_ms: float, **extra_env: str) -> dict:
        worker = bulk_pool(env, label, **extra_env)
        cpu_before = tree_cpu(worker.pid)
        started = time.perf_counter()
        for offset in range(0, len(recipients), 50_000):
            message_bulk_enqueue(tenant=tenant, spec=spec, recipients=recipients[offset:offset + 50_000])
        done = wait_done(len(recipients))
        cpu = tree_cpu(worker.pid) - cpu_before
        env.stop(worker)
        retried = DeliveryLog.objects.filter(event="retrying").count()
        Message.objects.all().delete()
        result = {"messages": len(recipients), "latency_ms": latency_ms, "per_s": round(len(recipients) / (done - started), 1),
                  "retried": retried,
                  "physical_limit_per_s": round(PROCESSES * slots / (latency_ms / 1000)),
                  "worker_cpu_us_per_message": round(cpu / len(recipients) * 1e6), "aim": "≥ 300/s"}
        print(f"{label}: {json.dumps(result)} (load {load()})", flush=True)
        return result

    only = only or {"sms", "push", "webhook"}
    if "sms" in only:
        out["sms_twilio"] = _sms(run, n)
    if "push" in only:
        out["push_fcm_2_devices"] = _push(run, n, tenant)
    if "webhook" in only:
        out["webhook"] = _webhook(run, n, tenant)
    print("channels:", json.dumps(out), flush=True)
    return out


def _sms(run, n: int) -> dict:
    from delivery.models import ChannelProvider
    from delivery.services import SendSpec
    from comms.devserver.standins.twilio import TwilioStandIn

    sid, token = "AC" + "1" * 32, "bench-token"
    twilio = TwilioStandIn(sid, token, latency_ms=SMS_MS)
    row = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                          is_primary=True, options={"from_number": "+15005550006", "base_url": twilio.url})
    row.credentials = {"account_sid": sid, "auth_token": token}
    row.save()
    try:
        return run("sms", SendSpec(channel="sms", body="Your code is 123456", priority=3),
                   [{"to": f"+1415555{i % 10000:04d}"} for i in range(n)], SMS_MS)
    finally:
        twilio.close()


def _push(run, n: int, tenant) -> dict:
    from comms.models import Device, Recipient
    from delivery.models import ChannelProvider
    from delivery.services import SendSpec
    from comms.devserver.standins.fcm import FcmStandIn

    fcm = FcmStandIn(project_id="comms-bench", latency_ms=PUSH_MS)
    row = ChannelProvider(channel="push", name="fcm", provider_class="delivery.providers.fcm.FcmProvider",
                          is_primary=True, options={"endpoint": fcm.url, "timeout": 10})
    row.credentials = {"service_account": fcm.service_account()}
    row.save()
    people = Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"push{i}") for i in range(n)])
    Device.objects.bulk_create([Device(tenant=tenant, recipient=r, token=f"tok-{r.external_id}-{k}",
                                       platform="android" if k else "ios") for r in people for k in range(2)])
    try:
        return run("push", SendSpec(channel="push", subject="Order", body="Shipped", priority=3),
                   [{"recipient_id": f"push{i}"} for i in range(n)], PUSH_MS)
    finally:
        fcm.close()


def _webhook(run, n: int, tenant) -> dict:
    from django.conf import settings

    from delivery.services import SendSpec
    from delivery.services.webhooks import endpoint_create
    from comms.devserver.standins.http_receiver import Receiver

    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the loopback receiver (workers: env below)
    receiver = Receiver(latency_ms=HOOK_MS)
    endpoint_create(tenant=tenant, url=f"{receiver.url}/hooks")
    try:
        return run("webhook", SendSpec(channel="webhook", to=f"{receiver.url}/hooks", body='{"event": "x"}',
                                       priority=3),
                   [{"to": f"{receiver.url}/hooks"} for _ in range(n)], HOOK_MS,
                   COMMS_OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32")
    finally:
        receiver.close()


def bench_cpu(env: Env, n: int, rounds: int) -> dict:
    """Worker CPU µs per email on loopback: the serial engine against the concurrent one, alternated."""
    runs: dict[str, list[int]] = {"serial": [], "concurrent": []}
    for i in range(rounds):
        for kind in (("serial", "concurrent") if i % 2 == 0 else ("concurrent", "serial")):
            extra = {"COMMS_SEND_CONCURRENCY": "1"} if kind == "serial" else {}
            result = comms_email(env, n, env.sink_port, f"cpu{kind}{i}", **extra)
            runs[kind].append(result["worker_cpu_us_per_email"])
            print(f"  {kind} round {i + 1}: {json.dumps(result)} (load {load()})", flush=True)
    result = {k: statistics.median(v) for k, v in runs.items()}
    print("worker CPU µs per email on loopback (median):", json.dumps(result), flush=True)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all", choices=["all", "email", "channels", "cpu"])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--channel-n", type=int, default=6_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--channels", default="sms,push,webhook")
    parser.add_argument("--no-po", action="store_true", help="skip django-post-office (its default takes minutes)")
    parser.add_argument("--po-threads", type=int, default=int(os.environ.get("BENCH_PO_TUNED_THREADS", 32)))
    args = parser.parse_args(argv)
    env = Env()
    try:
        from django.conf import settings

        print(f"machine: {os.cpu_count()} cores, load {load()}; COMMS_SEND_CONCURRENCY="
              f"{settings.COMMS_SEND_CONCURRENCY}, COMMS_PROVIDER_CONCURRENCY={settings.COMMS_PROVIDER_CONCURRENCY}",
              flush=True)
        if args.which in ("email", "all"):
            bench_email(env, args.n, args.rounds, args.po_threads, po=not args.no_po)
        if args.which in ("channels", "all"):
            bench_channels(env, args.channel_n, set(args.channels.split(",")))
        if args.which in ("cpu", "all"):
            bench_cpu(env, min(args.n, 10_000), max(2, args.rounds))
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

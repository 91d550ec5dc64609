"""Helpers for the many-node tests: "machines" made of process groups, and PgBouncer settings.

A node is what one machine runs (Celery worker pools, beat, optionally web), each process in its own
session, with the node's own COMMS_PROCESS_NAME, var dir, SMTP relay and, where the kernel lets us
(root: ``unshare --uts``), its own hostname, so lease owners and beat identities differ as on two hosts.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from comms.devserver.pgbouncer import PgBouncer
from tests.conftest import ROOT, worker_env


def pooled_env(bouncer: PgBouncer) -> dict[str, str]:
    """What a web or worker process needs to reach PostgreSQL through PgBouncer."""
    return {"DATABASE_URL": bouncer.url(), "DATABASE_POOLER": "transaction"}


@functools.lru_cache(maxsize=1)
def can_set_hostname() -> bool:
    """A private UTS namespace needs CAP_SYS_ADMIN (root here); elsewhere nodes share the real hostname."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--uts", "hostname", "probe-node"], capture_output=True)
    return probe.returncode == 0


class Node:
    """One "machine": its processes share a hostname, a var dir and an SMTP relay, nothing else."""

    def __init__(self, name: str, root: Path, env: dict[str, str]):
        self.name, self.var = name, root / name
        self.var.mkdir(parents=True, exist_ok=True)
        self.env = {**worker_env(), **env, "COMMS_VAR_DIR": str(self.var)}
        self.procs: dict[str, subprocess.Popen] = {}

    def _prefix(self) -> list[str]:
        if can_set_hostname():
            return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.name]
        return []

    def start(self, role: str, args: list[str]) -> subprocess.Popen:
        """Start `python -m <args>` as this node's `role`, logging to var/<role>.log."""
        log = open(self.var / f"{role}.log", "wb")
        proc = subprocess.Popen([*self._prefix(), sys.executable, "-m", *args], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**self.env, "COMMS_PROCESS_NAME": f"comms-{self.name}-{role}"})
        log.close()
        self.procs[role] = proc
        return proc

    def worker(self, queues: str = "p0,p1,p2,p3,p4") -> subprocess.Popen:
        return self.start("worker", ["celery", "-A", "config", "worker", "-Q", queues, "-P", "solo",
                                     "-n", f"{self.name}@%h", "-l", "warning", "--without-gossip",
                                     "--without-mingle", "--without-heartbeat"])

    def beat(self) -> subprocess.Popen:
        return self.start("beat", ["celery", "-A", "config", "beat", "-l", "info",
                                   "-s", str(self.var / "celerybeat-schedule")])

    def log(self, role: str) -> str:
        path = self.var / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for role, proc in self.procs.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(role)

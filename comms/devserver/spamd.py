"""SpamAssassin's spamd for `make run` and the tests: local rules only, one child, loopback.

``-L`` (local only) keeps spamd off the network (no DNS blocklists, no Razor/Pyzor), so the score
depends only on the content and the tests stay offline; ``--nouser-config`` ignores ~/.spamassassin.
spamd refuses to keep running as root, so when we are root it drops to ``nobody``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from comms.devserver.embedded import free_port

NOT_INSTALLED = ("  spamd          not installed (apt-get install spamassassin spamd): "
                 "template previews say 'spam check unavailable'")


def spamd_command(port: int, pidfile: Path) -> list[str]:
    cmd = [shutil.which("spamd") or "spamd", "--listen", f"127.0.0.1:{port}", "--pidfile", str(pidfile),
           "--max-children", "1", "--min-children", "1", "--nouser-config", "--syslog", "stderr", "-L"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    return cmd


def wait_listening(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> bool:
    """spamd compiles its rules before it listens (a few seconds): poll the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


class Spamd:
    """A spamd child on a free loopback port (tests start one per session, like PostgreSQL/Redis)."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o777)  # the pidfile is written after spamd drops to nobody
        self.port = free_port()
        self.log = open(root / "spamd.log", "wb")
        self.proc = subprocess.Popen(spamd_command(self.port, root / "spamd.pid"), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_listening(self.port, proc=self.proc):
            self.stop()
            raise RuntimeError(f"spamd did not start; see {root / 'spamd.log'}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def spamd_child(var: Path, env: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    """`make run`'s spamd child when spamd is installed (and COMMS_SPAMD_HOST is not set elsewhere)."""
    if env.get("COMMS_SPAMD_HOST"):
        return {}, [f"  spamd          {env['COMMS_SPAMD_HOST']}:{env.get('COMMS_SPAMD_PORT', '783')} (external)"]
    if not shutil.which("spamd"):
        return {}, [NOT_INSTALLED]
    port = int(env.get("COMMS_SPAMD_PORT") or 0) or free_port()
    run = var / "spamd"
    run.mkdir(parents=True, exist_ok=True)
    os.chmod(run, 0o777)
    env["COMMS_SPAMD_HOST"], env["COMMS_SPAMD_PORT"] = "127.0.0.1", str(port)
    return ({"spamd": {"cmd": spamd_command(port, run / "spamd.pid")}},
            [f"  spamd          127.0.0.1:{port} (SpamAssassin, local rules; template spam scores)"])

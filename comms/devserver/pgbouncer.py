"""A real PgBouncer in transaction pooling mode in front of PostgreSQL (tests and local many-node runs).

Debian's ``pgbouncer`` (``apt-get install pgbouncer``; the Makefile's ``test`` target installs it) is
started on a loopback port with a generated ini file. The embedded PostgreSQL (pgserver) listens only
on a unix socket and trusts local connections, so PgBouncer reaches it through that socket as the
server's superuser and admits any client name (``auth_type = any``): a loopback test rig, not a
production configuration (docs/operations.md has that one). PgBouncer refuses to run as root, so when
we are root it drops (``-u``) to the owner of the socket directory (pgserver keeps the socket in its
private data directory, which only that user may enter), else to ``nobody``, like spamd.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from comms.devserver.embedded import free_port
from comms.devserver.spamd import wait_listening

BINARY = "/usr/sbin/pgbouncer"


def pgbouncer_binary() -> str:
    return shutil.which("pgbouncer") or BINARY


def server_target(database_url: str) -> dict[str, str]:
    """host/port/user/dbname of a ``postgresql://user:@/db?host=/socket/dir`` (or TCP) URL."""
    parts = urlsplit(database_url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {"host": query.get("host") or parts.hostname or "127.0.0.1", "port": str(parts.port or 5432),
            "user": unquote(parts.username or "postgres"), "dbname": unquote(parts.path.lstrip("/"))}


class PgBouncer:
    """One pgbouncer process; ``restart()`` kills it and starts a new one on the same port."""

    def __init__(self, root: Path, *, database_url: str, port: int | None = None, pool_mode: str = "transaction",
                 default_pool_size: int = 20, max_client_conn: int = 500):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.target = server_target(database_url)
        self.port = port or free_port()
        self.ini = root / "pgbouncer.ini"
        target = " ".join(f"{k}={v}" for k, v in self.target.items() if k != "dbname")
        self.ini.write_text("\n".join([
            "[databases]",
            # The wildcard maps every database name to the same name on the server (test_comms, comms…).
            f"* = {target}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = any",
            f"pool_mode = {pool_mode}",
            f"default_pool_size = {default_pool_size}",
            f"max_client_conn = {max_client_conn}",
            # psycopg/Django send no startup options beyond these; anything else would be refused.
            "ignore_startup_parameters = extra_float_digits,options",
            # No logfile/pidfile: pgbouncer logs to stderr, which we open before it drops privileges
            # (pytest's temporary directories are private to root).
            "server_login_retry = 1",
            "",
        ]))
        os.chmod(self.ini, 0o644)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.start()

    def url(self, database: str | None = None) -> str:
        """The client-side DATABASE_URL (TCP to pgbouncer, the same database name)."""
        return f"postgresql://{self.target['user']}@127.0.0.1:{self.port}/{database or self.target['dbname']}"

    def command(self) -> list[str]:
        cmd = [pgbouncer_binary(), str(self.ini)]
        if os.geteuid() == 0:
            cmd[1:1] = ["-u", self._run_as()]
        return cmd

    def _run_as(self) -> str:
        host = self.target["host"]
        if host.startswith("/"):
            owner = pwd.getpwuid(os.stat(host).st_uid).pw_name
            if owner != "root":
                return owner
        return "nobody"

    def start(self) -> None:
        with open(self.root / "pgbouncer.log", "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        if not wait_listening(self.port, timeout=20, proc=self.proc):
            log = (self.root / "pgbouncer.log").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"pgbouncer did not start (exit {self.proc.returncode}): {log}")

    def kill(self) -> None:
        """SIGKILL: every client and server connection drops mid-whatever, as in a crash."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

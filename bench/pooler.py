"""Outcome-write cost direct and through PgBouncer (transaction mode); prints, asserts nothing.

    python bench/pooler.py [N]

One client writes N outcome-shaped statements (UPDATE one message row + INSERT its log row in one CTE,
as delivery.services.outcomes does) in autocommit, four ways: synchronous commit; the old session-wide
`SET synchronous_commit = off`; the per-transaction `set_config('synchronous_commit', 'off', true)`
inside the statement (what comms does now, safe behind a transaction pooler); and the last again
through PgBouncer. Medians of per-statement latency and the client's CPU per statement. A throwaway
embedded PostgreSQL (pgserver, fsync on) on a unix socket, PgBouncer on loopback TCP.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from comms.devserver.embedded import start_postgres  # noqa: E402
from comms.devserver.pgbouncer import PgBouncer  # noqa: E402

_SETUP = """
CREATE TABLE IF NOT EXISTS m (id int PRIMARY KEY, status text, attempt int DEFAULT 0);
CREATE TABLE IF NOT EXISTS l (id bigserial PRIMARY KEY, message_id int, event text, at timestamptz);
INSERT INTO m SELECT g, 'sending' FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;
"""
_WRITE = """
WITH {cte}u AS (UPDATE m SET status = 'sent', attempt = attempt + 1 WHERE id = %(id)s RETURNING id)
INSERT INTO l (message_id, event, at) SELECT id, 'sent', now() FROM u{join} RETURNING message_id
"""
_ASYNC = "_c AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)), "


def _run(url: str, sql: str, n: int, session_set: bool = False) -> dict:
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        if session_set:
            conn.execute("SET synchronous_commit = off")
        took = []
        cpu = time.process_time()
        for i in range(n):
            t = time.perf_counter()
            conn.execute(sql, {"id": i % 1000 + 1}).fetchall()
            took.append(time.perf_counter() - t)
        cpu = time.process_time() - cpu
        after = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return {"median_us": round(statistics.median(took) * 1e6), "p99_us": round(sorted(took)[int(n * 0.99)] * 1e6),
            "client_cpu_us": round(cpu / n * 1e6), "session_after": after}


def main(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="comms-bench-pooler-"))
    root.chmod(0o755)
    pg = start_postgres(root / "pg")
    bouncer = PgBouncer(root / "pgbouncer", database_url=pg.url, default_pool_size=4)
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(_SETUP)
        sync, per_txn = _WRITE.format(cte="", join=""), _WRITE.format(cte=_ASYNC, join=", _c")
        rows = {
            "direct, synchronous commit": _run(pg.url, sync, n),
            "direct, session SET synchronous_commit=off (old)": _run(pg.url, sync, n, session_set=True),
            "direct, per-transaction set_config (now)": _run(pg.url, per_txn, n),
            "pgbouncer, synchronous commit": _run(bouncer.url(), sync, n),
            "pgbouncer, per-transaction set_config (now)": _run(bouncer.url(), per_txn, n),
        }
        print(f"{n} outcome writes per row, one client")
        print(f"{'':52} {'median µs':>10} {'p99 µs':>8} {'client CPU µs':>14}  session after")
        for name, r in rows.items():
            print(f"{name:52} {r['median_us']:>10} {r['p99_us']:>8} {r['client_cpu_us']:>14}  {r['session_after']}")
    finally:
        bouncer.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

"""The one readiness probe of the stores every process needs: PostgreSQL and Redis.

Used by /api/v1/health and by the console's /readyz (which adds the worker heartbeats). It reports
what is down instead of raising: the endpoints exist to say so.
"""

from __future__ import annotations

from django.db import connection

from comms.redis import redis_client


def stores_check() -> dict[str, str]:
    """``{"database": "ok" | "error: <type>", "redis": …}``: one cheap round trip to each."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this exists to say what is down
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis_client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    return checks

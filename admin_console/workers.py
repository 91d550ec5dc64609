"""Worker liveness: every Celery worker writes a Redis heartbeat; readers count the fresh ones.

Cheaper and faster than ``celery inspect ping`` (which waits a full timeout for silent workers),
so the dashboard and /readyz can afford it on every request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from django.conf import settings

from comms.redis import redis_client

log = logging.getLogger(__name__)
PREFIX = "comms:worker:"
_stop = threading.Event()


def beat(*, hostname: str, queues: list[str]) -> None:
    """Write one heartbeat; it expires after three missed intervals."""
    interval = settings.COMMS_WORKER_HEARTBEAT_SECONDS
    redis_client().set(PREFIX + hostname, json.dumps({"hostname": hostname, "queues": queues, "pid": os.getpid(),
                                                      "at": time.time()}), ex=max(1, int(interval * 3)))


def forget(hostname: str) -> None:
    redis_client().delete(PREFIX + hostname)


def alive() -> list[dict]:
    """The workers with a fresh heartbeat, sorted by hostname."""
    client = redis_client()
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=500))
    found = []
    for raw in client.mget(keys) if keys else []:
        if raw:
            data = json.loads(raw)
            data["age_seconds"] = round(max(0.0, time.time() - data.get("at", 0)), 1)
            found.append(data)
    return sorted(found, key=lambda d: d["hostname"])


def _loop(hostname: str, queues: list[str]) -> None:
    while True:
        try:
            beat(hostname=hostname, queues=queues)
        except Exception:
            log.warning("worker heartbeat not written", exc_info=True)
        if _stop.wait(settings.COMMS_WORKER_HEARTBEAT_SECONDS):
            return


_current: dict[str, str] = {}


def on_worker_ready(sender=None, **kwargs) -> None:
    """celery.signals.worker_ready: start the heartbeat thread of this worker."""
    hostname = getattr(sender, "hostname", None) or f"worker@{os.uname().nodename}:{os.getpid()}"
    try:
        queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values())
    except Exception:
        queues = []
    _stop.clear()
    _current["hostname"] = hostname
    threading.Thread(target=_loop, args=(hostname, queues), name="comms-heartbeat", daemon=True).start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    _stop.set()
    hostname = _current.pop("hostname", None)
    if hostname:
        try:
            forget(hostname)
        except Exception:
            log.warning("worker heartbeat not removed", exc_info=True)

"""Real-time events: what services broadcast through the Channels layer, and the groups they go to.

Every ASGI process subscribes its sockets to the groups of their conversations, so an event sent by
any process (web, worker, another ASGI machine) reaches every connected participant. Services send
on commit: a rolled-back message is never announced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import uuid
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction
from rest_framework.utils.encoders import JSONEncoder

log = logging.getLogger(__name__)
_encoder = JSONEncoder()


def conversation_group(conversation_id: uuid.UUID | str) -> str:
    return f"conv.{uuid.UUID(str(conversation_id)).hex}"


def recipient_group(recipient_id: uuid.UUID | str) -> str:
    """A recipient's own sockets: told when they join a conversation so they subscribe to it."""
    return f"rcpt.{uuid.UUID(str(recipient_id)).hex}"


def _plain(value: Any) -> Any:
    # msgpack (the Redis layer's encoding) cannot carry datetimes or UUIDs: encode as the REST API does.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _encoder.default(value)


class _Broadcaster:
    """One event loop thread per process sends the events, in order, off the request's critical path.

    `async_to_sync(group_send)` per event cost ~3 ms of CPU and a new Redis connection pool each time
    (a fresh loop per call); here the pool lives as long as the process, and a sync caller (gunicorn
    thread, Celery task, the ASGI thread pool) only enqueues. One consumer task keeps the order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        if self._pid != os.getpid():  # first use, or a forked child (Celery prefork): start our own
            with self._lock:
                if self._pid != os.getpid():
                    loop = asyncio.new_event_loop()
                    ready = threading.Event()
                    threading.Thread(target=self._run, args=(loop, ready), name="conv-events", daemon=True).start()
                    ready.wait(5)
                    self._loop, self._pid = loop, os.getpid()
        return self._loop

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        self._queue = asyncio.Queue()
        loop.call_soon(ready.set)
        loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            group, message, done = await self._queue.get()
            try:
                await layer.group_send(group, message)
            except Exception:  # noqa: BLE001 - the message is committed; only its live notice is lost
                log.warning("conversation event not broadcast to %s", group, exc_info=True)
            if done is not None:
                done.set()

    def submit(self, group: str, message: dict, done: threading.Event | None = None) -> None:
        loop = self._ensure()
        loop.call_soon_threadsafe(self._queue.put_nowait, (group, message, done))


_broadcaster = _Broadcaster()


def send_now(group: str, event: dict, *, kind: str = "conv.event") -> None:
    """Broadcast one event (queued to this process's sender; a Redis outage loses the live notice, never
    the message: clients catch up with GET …/messages?after=<index>)."""
    plain = _plain(event)
    # Encoded once here, not once per socket: the consumer forwards the text as it is.
    _broadcaster.submit(group, {"type": kind, "event": plain, "text": json.dumps(plain, separators=(",", ":"))})


def flush(timeout: float = 5.0) -> bool:
    """Wait until the events queued so far are sent (tests, and before a process exits)."""
    done = threading.Event()
    _broadcaster.submit("conv.flush", {"type": "conv.flush"}, done)
    return done.wait(timeout)


def broadcast_on_commit(conversation_id: uuid.UUID | str, event: dict) -> None:
    group = conversation_group(conversation_id)
    transaction.on_commit(lambda: send_now(group, event))


def joined_on_commit(recipient_id: uuid.UUID | str, conversation_id: uuid.UUID | str) -> None:
    group = recipient_group(recipient_id)
    transaction.on_commit(lambda: send_now(group, {"conversation_id": str(conversation_id)}, kind="conv.joined"))

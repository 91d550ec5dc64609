"""Real-time events: what services broadcast through the Channels layer, and the groups they go to.

Every ASGI process subscribes its sockets to the groups of their conversations, so an event sent by
any process (web, worker, another ASGI machine) reaches every connected participant. Services send
on commit: a rolled-back message is never announced.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
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


def send_now(group: str, event: dict, *, kind: str = "conv.event") -> None:
    """Broadcast one event; a Redis outage loses the live notice, never the message (clients re-fetch)."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": kind, "event": _plain(event)})
    except Exception:  # noqa: BLE001 - the message is committed; only its live notice is lost
        log.warning("conversation event not broadcast to %s", group, exc_info=True)


async def asend(group: str, event: dict, *, kind: str = "conv.event") -> None:
    await get_channel_layer().group_send(group, {"type": kind, "event": _plain(event)})


def broadcast_on_commit(conversation_id: uuid.UUID | str, event: dict) -> None:
    group = conversation_group(conversation_id)
    transaction.on_commit(lambda: send_now(group, event))


def joined_on_commit(recipient_id: uuid.UUID | str, conversation_id: uuid.UUID | str) -> None:
    group = recipient_group(recipient_id)
    transaction.on_commit(lambda: send_now(group, {"conversation_id": str(conversation_id)}, kind="conv.joined"))

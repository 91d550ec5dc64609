"""In-app: the "provider" is our own inbox table, plus a Redis pub/sub notice for live clients."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from django.db import IntegrityError, connection, transaction

from comms.enums import Channel
from comms.links import safe_link
from delivery.models import InAppNotification
from delivery.providers.base import Content, Provider, SendResult
from comms.redis import redis_client

log = logging.getLogger(__name__)


def inbox_channel(recipient_id: Any) -> str:
    return f"comms:inbox:{recipient_id}"


class InAppProvider(Provider):
    name = "in_app"
    channel = Channel.IN_APP
    concurrent = False  # the delivery is a database insert: it runs on the engine's thread

    def send(self, message: Any, content: Content) -> SendResult:
        if message.recipient_id is None:
            return SendResult.permanent("COMMS_RECIPIENT_NOT_FOUND", "in-app messages need a directory recipient")
        data = content.data or {}
        item = InAppNotification(
            message_id=message.id, tenant_id=message.tenant_id, recipient_id=message.recipient_id,
            title=str(data.get("title") or content.subject)[:255], body=str(data.get("body") or content.body),
            # Templated links were checked when rendered; the caller's metadata deep_link is checked here.
            deep_link=safe_link(data.get("link") or data.get("deep_link")
                                or message.metadata.get("deep_link", ""))[:2048],
            category=message.category, data=data, pinned=bool(message.metadata.get("pinned")),
            expires_at=message.metadata.get("expires_at") or None,
        )
        try:
            # Inside a caller's transaction a refused insert must not spoil it; the engine runs in
            # autocommit, where the one statement is the whole transaction.
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                item_id = _insert_once(item)
        except IntegrityError as exc:
            return SendResult.permanent("COMMS_RECIPIENT_NOT_FOUND", str(exc)[:200])
        try:
            redis_client().publish(inbox_channel(message.recipient_id), json.dumps({"id": str(item_id)}))
        except Exception:  # live update is a nicety; the inbox row is the delivery
            log.warning("inbox notice for %s not published", item_id, exc_info=True)
        return SendResult.sent(str(item_id))


def _insert_once(item: InAppNotification) -> Any:
    """One round trip: insert the inbox item unless a retry of this message already did; its id."""
    fields = InAppNotification._meta.concrete_fields
    sql = (f"INSERT INTO {InAppNotification._meta.db_table} ({', '.join(f.column for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT (message_id) DO NOTHING RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(item, True), connection) for f in fields])
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    return InAppNotification.objects.values_list("id", flat=True).get(message_id=item.message_id)

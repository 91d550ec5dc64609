"""In-app: the "provider" is our own inbox table, plus a Redis pub/sub notice for live clients."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import IntegrityError, transaction

from comms.enums import Channel
from delivery.models import InAppNotification
from delivery.providers.base import Content, Provider, SendResult
from delivery.wakeup import redis_client

log = logging.getLogger(__name__)


def inbox_channel(recipient_id: Any) -> str:
    return f"comms:inbox:{recipient_id}"


class InAppProvider(Provider):
    name = "in_app"
    channel = Channel.IN_APP

    def send(self, message: Any, content: Content) -> SendResult:
        if message.recipient_id is None:
            return SendResult.permanent("COMMS_RECIPIENT_NOT_FOUND", "in-app messages need a directory recipient")
        data = content.data or {}
        try:
            with transaction.atomic():  # one inbox item per message, even if a retry comes back here
                item, _ = InAppNotification.objects.get_or_create(message_id=message.id, defaults={
                    "tenant_id": message.tenant_id, "recipient_id": message.recipient_id,
                    "title": str(data.get("title") or content.subject)[:255], "body": str(data.get("body") or content.body),
                    "deep_link": str(data.get("link") or message.metadata.get("deep_link", ""))[:2048],
                    "category": message.category, "data": data, "pinned": bool(message.metadata.get("pinned")),
                    "expires_at": message.metadata.get("expires_at") or None,
                })
        except IntegrityError as exc:
            return SendResult.permanent("COMMS_RECIPIENT_NOT_FOUND", str(exc)[:200])
        try:
            redis_client().publish(inbox_channel(message.recipient_id), json.dumps({"id": str(item.id)}))
        except Exception:  # live update is a nicety; the inbox row is the delivery
            log.warning("inbox notice for %s not published", item.id, exc_info=True)
        return SendResult.sent(str(item.id))

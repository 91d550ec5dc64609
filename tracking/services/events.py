"""Normalised events → MessageEvent + (through delivery) forward-only status and its log + metrics + consequences.

Everything one event causes happens in one transaction, keyed by the provider's event id: a
redelivered event (EC-COM-023) hits the unique constraint and changes nothing.
"""

from __future__ import annotations

import enum
import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from comms.enums import LogEvent, Status
from delivery.models import Message
from delivery.services import message_advance
from tracking import useragent
from tracking.models import BounceType, EventType, MessageEvent
from tracking.normalised import NormalisedEvent
from tracking.services import consequences, metrics

log = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    ORPHAN = "orphan"  # no matching message, or it is not marked sent yet (EC-COM-022)
    UNKNOWN = "unknown"  # an event type we do not know (EC-COM-025)


# Where a webhook means to move a message; delivery's message_advance decides whether it may (status
# only ever moves forward, so a late 'delivered' never overwrites 'bounced').
_TARGET: dict[str, str] = {
    "delivered": Status.DELIVERED,
    "bounced:hard": Status.BOUNCED,
    "complained": Status.COMPLAINED,
    "failed": Status.FAILED,
    "rejected": Status.FAILED,
}
_LOG_EVENT = {
    EventType.DELIVERED: LogEvent.DELIVERED, EventType.BOUNCED: LogEvent.BOUNCED,
    EventType.COMPLAINED: LogEvent.COMPLAINED, EventType.OPENED: LogEvent.OPENED,
    EventType.CLICKED: LogEvent.CLICKED, EventType.UNSUBSCRIBED: LogEvent.UNSUBSCRIBED,
    EventType.FAILED: LogEvent.FAILED, EventType.REJECTED: LogEvent.FAILED, EventType.DEFERRED: LogEvent.DEFERRED,
}
# Messages in these states have not been handed to a provider (or its answer is not recorded yet).
_NOT_SENT = (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.DEFERRED)
MESSAGE_FIELDS = ("id", "tenant_id", "status", "channel", "category", "recipient_id", "recipient_address", "batch_id",
                  "template_version_id", "variant", "metadata", "provider_ref", "attempt_count", "sent_at")


def message_match(*, message_id: str = "", provider_ref: str = "") -> Message | None:
    """Our id when the provider echoed it, else the provider's own message id."""
    qs = Message.objects.only(*MESSAGE_FIELDS)
    if message_id:
        try:
            found = qs.filter(id=uuid.UUID(str(message_id))).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if provider_ref:
        # RFC 5322 Message-IDs come with or without their angle brackets depending on the ESP's API.
        bare = provider_ref.strip().strip("<>")
        return qs.filter(provider_ref__in={provider_ref, bare, f"<{bare}>"}).first()
    return None


def event_ingest(*, event: NormalisedEvent, webhook_id: int | None = None,
                 message: Message | None = None) -> Outcome:
    """Apply one normalised event exactly once."""
    if event.event_type not in EventType.values or event.event_type == EventType.UNKNOWN:
        return Outcome.UNKNOWN
    message = message or message_match(message_id=event.message_id, provider_ref=event.provider_ref)
    if message is None or message.status in _NOT_SENT:
        return Outcome.ORPHAN
    now = timezone.now()
    at = event.timestamp or now
    device, client, machine = useragent.classify(event.user_agent) if event.user_agent else ("", "", False)
    data = dict(event.data)
    if machine:
        data["machine"] = True
    try:
        with transaction.atomic():
            row = MessageEvent.objects.create(
                tenant_id=message.tenant_id, message_id=message.id, event_type=event.event_type,
                bounce_type=event.bounce_type if event.event_type == EventType.BOUNCED else "",
                provider=event.provider, provider_event_id=event.stable_id(), webhook_id=webhook_id,
                recipient_address=(event.recipient or message.recipient_address)[:512], timestamp=at, recorded_at=now,
                link_url=event.url[:2048], link_id=str(data.get("link_index", ""))[:64],
                ip_address=useragent.truncate_ip(event.ip), user_agent=event.user_agent[:512],
                device_type=device, client=client, reason=event.reason[:2000], data=data,
            )
            key = f"bounced:{event.bounce_type or BounceType.HARD}" if event.event_type == EventType.BOUNCED \
                else event.event_type
            if event.event_type in _LOG_EVENT:  # every event that moves a status is logged
                message_advance(
                    message=message, status=_TARGET.get(key), log_event=_LOG_EVENT[event.event_type], at=at, now=now,
                    provider=event.provider, provider_event_id=row.provider_event_id,
                    status_code=event.bounce_type or event.raw_type, detail=event.reason,
                    data={"event": row.pk, **({"url": event.url} if event.url else {})},
                )
            metrics.count_event(message=message, event_type=event.event_type, bounce_type=row.bounce_type, at=at)
            consequences.apply(message=message, event=event, at=at)
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") != "msgevent_unique_provider_event":
            raise
        return Outcome.DUPLICATE
    return Outcome.APPLIED

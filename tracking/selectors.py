"""Read queries of tracking: what has happened to a message (journeys branch on it), and engagement per
address that other apps name in settings (tracking sits above delivery)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from comms.enums import Status
from delivery.models import InAppNotification, Message
from tracking.models import EventType, MessageEvent

# A message status that is, by itself, evidence of an outcome (a webhook may have moved the status
# without every intermediate event being stored).
_STATUS_OUTCOMES = {Status.SENT: {"sent"}, Status.DELIVERED: {"sent", "delivered"},
                    Status.BOUNCED: {"sent", "bounced"}, Status.BLOCKED: {"blocked"}}
_EVENT_OUTCOMES = {EventType.DELIVERED: "delivered", EventType.OPENED: "opened", EventType.CLICKED: "clicked",
                   EventType.BOUNCED: "bounced"}


def message_outcomes(*, message_id: object) -> set[str]:
    """{'sent','delivered','opened','clicked','bounced','blocked','read','unread'} that hold for the message.

    A click implies an open (an image-blocking mail client clicks without loading the pixel); an in-app
    item is 'read' once its read_at is set, else 'unread'.
    """
    status = Message.objects.filter(pk=message_id).values_list("status", flat=True).first()
    if status is None:
        return set()
    out = set(_STATUS_OUTCOMES.get(status, set()))
    types = set(MessageEvent.objects.filter(message_id=message_id, event_type__in=list(_EVENT_OUTCOMES))
                .values_list("event_type", flat=True).distinct())
    out |= {_EVENT_OUTCOMES[t] for t in types}
    if "clicked" in out:
        out.add("opened")
    if out & {"opened", "clicked"}:
        out |= {"sent", "delivered"}
    inbox = list(InAppNotification.objects.filter(message_id=message_id).values_list("read_at", flat=True)[:1])
    if inbox:
        out.add("read" if inbox[0] is not None else "unread")
    return out


def engagement_scores(*, tenant_id: Any, addresses: list[str], since: datetime) -> dict[str, int]:
    """{address: opens + clicks since `since`} for the addresses that engaged (others are absent).

    Used by warm-up ladders to give engaged recipients today's slots first (seed 001: "start with
    high-engagement" mail). Served by msgevent_address_idx (address, event_type, timestamp).
    """
    rows = (MessageEvent.objects
            .filter(recipient_address__in=set(addresses), event_type__in=[EventType.OPENED, EventType.CLICKED],
                    timestamp__gte=since, tenant_id=tenant_id)
            .values("recipient_address").annotate(n=Count("id")))
    return {r["recipient_address"]: r["n"] for r in rows}

"""What a delivery event means for future sends: suppression, unsubscribe, soft-bounce counting.

Hard bounces and complaints suppress the address (complaints under their own reason, so a
deliverability review can tell them apart); three soft bounces within 72 hours suppress it for a
while; an unsubscribe reported by the ESP goes through preferences like our own unsubscribe link.
Suppression itself belongs to the preferences app: this module only calls its services.

`at` is the provider's time of the event (kept on the suppression as ``event_at``). A temporary
suppression's expiry is counted from now, when we apply it: events arrive late (provider retries,
a backlog, a re-processed row), and one counted from an event days old would be born expired.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from comms.models import Recipient, Tenant
from delivery.models import Message
from preferences import services as preferences
from tracking.models import BounceType, EventType, MessageEvent
from tracking.normalised import NormalisedEvent

log = logging.getLogger(__name__)


def _source(event: NormalisedEvent) -> str:
    return f"webhook:{event.provider}"


def soft_bounces_recent(*, tenant_id: object, address: str, at: datetime) -> int:
    window = timedelta(hours=settings.COMMS_SOFT_BOUNCE_WINDOW_HOURS)
    return MessageEvent.objects.filter(
        tenant_id=tenant_id, recipient_address=address, event_type=EventType.BOUNCED, bounce_type=BounceType.SOFT,
        timestamp__gt=at - window, timestamp__lte=at + timedelta(seconds=1),
    ).count()


def apply(*, message: Message, event: NormalisedEvent, at: datetime) -> None:
    """Run inside the event's transaction: a suppression is written if and only if the event is."""
    address = message.recipient_address
    tenant = Tenant(pk=message.tenant_id)
    if event.event_type == EventType.BOUNCED and event.bounce_type != BounceType.SOFT:
        preferences.suppression_add(tenant=tenant, channel=message.channel, address=address, reason="hard_bounce",
                                    source=_source(event), detail=event.reason[:500], event_at=at)
    elif event.event_type == EventType.BOUNCED:
        count = soft_bounces_recent(tenant_id=tenant, address=address, at=at)
        if count >= settings.COMMS_SOFT_BOUNCE_LIMIT:
            until = timezone.now() + timedelta(hours=settings.COMMS_SOFT_BOUNCE_SUPPRESS_HOURS)
            # preferences has no 'soft_bounce' reason: a temporary 'manual' entry, named in source/detail
            preferences.suppression_add(tenant=tenant, channel=message.channel, address=address, reason="manual",
                                        source=f"{_source(event)}:soft_bounce", expires_at=until, event_at=at,
                                        detail=f"{count} soft bounces within "
                                               f"{settings.COMMS_SOFT_BOUNCE_WINDOW_HOURS} h")
    elif event.event_type == EventType.COMPLAINED:
        preferences.suppression_add(tenant=tenant, channel=message.channel, address=address, reason="complaint",
                                    source=_source(event), detail=event.reason[:500], event_at=at)
    elif event.event_type == EventType.UNSUBSCRIBED and event.provider != "comms":
        if message.recipient_id:
            recipient = Recipient.objects.get(pk=message.recipient_id)
            preferences.unsubscribe(recipient=recipient, category=message.category, channel=message.channel,
                                    source=_source(event), ip=event.ip or None, user_agent=event.user_agent or None,
                                    source_ref=_ref(event))
        else:  # an ad-hoc address has no preferences to change: it is suppressed instead
            preferences.suppression_add(tenant=tenant, channel=message.channel, address=address, reason="unsubscribe",
                                        source=_source(event), event_at=at)
            # ... and the person's withdrawal is evidence like any other: recorded, linked to every
            # recipient of the directory holding that address (before, it left no ledger row at all).
            preferences.consent_record(tenant=tenant, address=address, channel=message.channel,
                                       category=message.category, action="withdrawn", source=_source(event),
                                       ip=event.ip or None, user_agent=event.user_agent or None, at=at,
                                       consent_text=f"Unsubscribe reported by {event.provider}",
                                       source_ref=_ref(event))


def _ref(event: NormalisedEvent) -> str:
    """The ledger's key for a provider event: the same id the event itself is deduplicated on."""
    return f"event:{event.provider}:{event.stable_id()}"[:128]


def apply_batch(*, items: list[tuple[Message, NormalisedEvent, datetime]]) -> None:
    """``apply`` for a batch of applied events, in the given order: hard bounces and complaints become
    permanent suppressions in one statement; soft bounces (they count earlier rows) and ESP
    unsubscribes (preferences and the consent ledger) go one by one, as they are rare."""
    permanent = []
    for message, event, at in items:
        hard = event.event_type == EventType.BOUNCED and event.bounce_type != BounceType.SOFT
        if hard or event.event_type == EventType.COMPLAINED:
            permanent.append({"tenant_id": message.tenant_id, "channel": message.channel,
                              "address": message.recipient_address, "reason": "hard_bounce" if hard else "complaint",
                              "source": _source(event), "detail": event.reason[:500], "event_at": at})
        else:
            apply(message=message, event=event, at=at)
    if permanent:
        preferences.suppressions_add_bulk(entries=permanent)

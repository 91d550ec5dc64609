"""Offline notifications: a participant who is away gets ONE email digest of what they have not read.

A beat task (``tasks.channels_tick``) looks for in-app participants of open conversations who are
offline — ``last_seen_at`` older than COMMS_OFFLINE_AFTER_MINUTES (or never seen), and no live
WebSocket according to COMMS_CONVERSATIONS_PRESENCE (the Redis presence by default) — and who have unread
messages from others whose oldest has waited COMMS_OFFLINE_DIGEST_MINUTES (15 by default). They get
one email through the normal send pipeline listing those messages. ``notified_index`` remembers the
last message announced, so the next digest only ever covers newer messages, and ``notified_at``
spaces digests by the same window: never one email per message. Reading in the meantime (the read
horizon passing the messages) means no digest at all. The idempotency key names the participant
and the last index covered, so two beat workers cannot send the same digest twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.module_loading import import_string

from comms import errors
from comms.conversations.bridge import _sender_name
from comms.conversations.models import Conversation, ConversationMessage, Participant
from delivery.services import SendSpec, message_enqueue

log = logging.getLogger(__name__)
MAX_LISTED = 20


@dataclass
class DigestStats:
    sent: int = 0
    skipped: int = 0


def _candidates(now: datetime):
    delay = timedelta(minutes=settings.COMMS_OFFLINE_DIGEST_MINUTES)
    away = now - timedelta(minutes=settings.COMMS_OFFLINE_AFTER_MINUTES)
    return (Participant.objects
            .filter(binding=Participant.Binding.IN_APP, recipient__isnull=False, left_at__isnull=True,
                    conversation__state=Conversation.State.OPEN)
            .filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=away))
            .filter(Q(notified_at__isnull=True) | Q(notified_at__lte=now - delay))
            .annotate(horizon=Greatest(F("last_read_index"), F("notified_index")))
            .filter(conversation__last_index__gt=F("horizon")))


def offline_digests_send(*, now: datetime | None = None, limit: int = 500) -> DigestStats:
    """Send the due offline digests (one per participant per window)."""
    now = now or timezone.now()
    stats = DigestStats()
    for pk in list(_candidates(now).values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            participant = (_candidates(now).select_for_update(skip_locked=True, of=("self",))
                           .select_related("conversation", "recipient").filter(pk=pk).first())
            if participant is None:
                continue  # another worker has it, or it was read meanwhile
            if _send_one(participant, now):
                stats.sent += 1
            else:
                stats.skipped += 1
    return stats


def _online(participant: Participant) -> bool:
    """WebSocket presence when COMMS_CONVERSATIONS_PRESENCE names a callable(participant) -> bool (by
    default presence.participant_online, the Redis presence); empty, last_seen_at alone decided (in _candidates)."""
    path = getattr(settings, "COMMS_CONVERSATIONS_PRESENCE", "")
    return bool(path) and bool(import_string(path)(participant=participant))


def _send_one(participant: Participant, now: datetime) -> bool:
    if _online(participant):
        return False
    horizon = max(participant.last_read_index, participant.notified_index)
    unread = list(ConversationMessage.objects.select_related("sender")
                  .filter(conversation_id=participant.conversation_id, index__gt=horizon, deleted_at__isnull=True)
                  .exclude(sender_id=participant.pk).order_by("index"))
    delay = timedelta(minutes=settings.COMMS_OFFLINE_DIGEST_MINUTES)
    if not unread or unread[0].created_at > now - delay:
        return False  # nothing from others, or the oldest has not waited the window yet
    upto = unread[-1].index
    conversation = participant.conversation
    title = conversation.subject or "a conversation"
    lines = [f"{_sender_name(m)}: {m.body[:500]}" for m in unread[:MAX_LISTED]]
    if len(unread) > MAX_LISTED:
        lines.append(f"… and {len(unread) - MAX_LISTED} more.")
    spec = SendSpec(channel="email", recipient_id=participant.recipient.external_id,
                    subject=f"{len(unread)} unread message{'s' if len(unread) != 1 else ''} in {title}"[:200],
                    body="While you were away:\n\n" + "\n\n".join(lines),
                    category=settings.COMMS_CONVERSATIONS_CATEGORY, priority=3,
                    metadata={"conversation_id": str(conversation.pk), "participant_id": str(participant.pk),
                              "offline_digest_upto": upto})
    try:
        with transaction.atomic():
            message_enqueue(tenant=conversation.tenant, spec=spec,
                            idempotency_key=f"conv-offline:{participant.pk}:{upto}", now=now)
    except errors.CommsError as exc:  # no email address, opted out…: remembered, not retried every tick
        log.info("offline digest for participant %s not sent: %s", participant.pk, exc.code)
    Participant.objects.filter(pk=participant.pk).update(notified_index=upto, notified_at=now)
    return True

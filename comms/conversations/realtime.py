"""The sync side of the WebSocket: typing throttle, receipts, presence announcements, the sweeper.

Kept apart from the consumer so it is plain Django code (database and Redis), run in the thread pool.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from comms.conversations import presence, selectors, services
from comms.conversations.events import conversation_group, send_now
from comms.conversations.models import Participant
from comms.redis import redis_client

log = logging.getLogger(__name__)
_sweepers: dict[int, asyncio.Task] = {}


def memberships(recipient_id) -> dict[str, str]:
    return {str(c): str(p) for c, p in selectors.recipient_memberships(recipient_id=recipient_id)}


def online_snapshot(conversation_ids: list[str]) -> list[str]:
    """Participant ids (of these conversations) whose recipient has a live connection somewhere."""
    rows = list(Participant.objects.filter(conversation_id__in=conversation_ids, left_at__isnull=True,
                                           recipient__isnull=False).values_list("id", "recipient_id"))
    live = presence.online(sorted({str(r) for _, r in rows}))
    return [str(p) for p, r in rows if str(r) in live]


def announce_presence(recipient_id, status: str) -> None:
    """Tell every conversation of the recipient; last_seen_at moves on both edges."""
    now = timezone.now()
    rows = list(Participant.objects.filter(recipient_id=recipient_id, left_at__isnull=True).select_related(
        "recipient").values_list("id", "conversation_id", "recipient__external_id"))
    services.presence_seen(participant_ids=[p for p, _, _ in rows], at=now)
    for participant_id, conversation_id, external_id in rows:
        send_now(conversation_group(conversation_id), {
            "type": "presence", "conversation_id": str(conversation_id), "participant_id": str(participant_id),
            "recipient_id": external_id, "status": status, "last_seen_at": now})


def typing(*, conversation_id: str, participant_id: str) -> bool:
    """At most one typing event per participant per COMMS_TYPING_THROTTLE_SECONDS (SET NX PX: across
    processes); clients hide the indicator after expires_in_ms unless it is renewed."""
    key = f"comms:typing:{participant_id}"
    if not redis_client().set(key, 1, nx=True, px=int(settings.COMMS_TYPING_THROTTLE_SECONDS * 1000)):
        return False
    name = Participant.objects.filter(pk=participant_id).values_list("display_name", flat=True).first() or ""
    send_now(conversation_group(conversation_id), {
        "type": "typing", "conversation_id": conversation_id, "participant_id": participant_id,
        "display_name": name, "expires_in_ms": int(settings.COMMS_TYPING_EXPIRES_SECONDS * 1000)})
    return True


def delivered(*, participant_id: str, message_ids: list[str]) -> list[str]:
    participant = Participant.objects.get(pk=participant_id)
    return services.receipt_delivered(participant=participant, message_ids=message_ids)


def read(*, participant_id: str, index: int) -> int:
    participant = Participant.objects.get(pk=participant_id)
    return services.read_horizon_set(participant=participant, index=index).last_read_index


def sweep_once() -> list[str]:
    gone = presence.sweep()
    for recipient_id in gone:
        announce_presence(recipient_id, "offline")
    return gone


async def _sweep_forever() -> None:
    while True:
        await asyncio.sleep(max(1.0, settings.COMMS_PRESENCE_TTL_SECONDS / 2))
        try:
            await sync_to_async(sweep_once, thread_sensitive=False)()
        except Exception:  # noqa: BLE001 - Redis/database hiccup: try again next round
            log.warning("presence sweep failed", exc_info=True)


def ensure_sweeper() -> None:
    """One sweeper per process (per event loop): expired connections of dead processes go offline."""
    loop = asyncio.get_running_loop()
    task = _sweepers.get(id(loop))
    if task is None or task.done():
        _sweepers[id(loop)] = loop.create_task(_sweep_forever())

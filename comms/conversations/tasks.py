"""Beat work of the conversation channels: delivered receipts from outbound SMS/email, offline digests."""

from __future__ import annotations

from celery import shared_task

from comms.conversations.bridge import receipts_refresh
from comms.conversations.offline import offline_digests_send


@shared_task(name="comms.conversations.tasks.channels_tick", ignore_result=True)
def channels_tick() -> dict:
    receipts = receipts_refresh()
    digests = offline_digests_send()
    return {"receipts": receipts, "digests_sent": digests.sent}

"""Which campaign (or journey) a sent message's cost belongs to: the roll-up's ``campaign`` key.

Campaign fan-out writes its rows with COPY and puts ``{"campaign_id", "campaign_name"}`` on the
MessageBatch, not on each row (comms.campaigns.fanout), so the row's own metadata is empty; a bulk
call's metadata lives on its batch the same way. Journey sends are single messages whose metadata
names the journey (comms.router.journey_engine): they are attributed as ``journey:<key>``, which a
campaign id (a UUID) can never be, so one group_by=campaign shows every programme's spend.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from delivery.models import MessageBatch

MAX = 64  # CostDaily.campaign


@lru_cache(maxsize=4096)
def _batch_campaign(batch_id: Any) -> str:
    """A batch's campaign id (batch metadata is written once, with the batch, so caching it is safe)."""
    metadata = MessageBatch.objects.filter(pk=batch_id).values_list("metadata", flat=True).first() or {}
    return str(metadata.get("campaign_id") or "") if isinstance(metadata, dict) else ""


def campaign_of(message: Any) -> str:
    """The row's own campaign_id, else its batch's, else ``journey:<key>``, else ""."""
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    campaign = str(metadata.get("campaign_id") or "")
    if not campaign and message.batch_id:
        campaign = _batch_campaign(message.batch_id)
    if not campaign and metadata.get("journey"):
        campaign = f"journey:{metadata['journey']}"
    return campaign[:MAX]

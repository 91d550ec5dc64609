"""Read queries of tracking that other apps name in settings (tracking sits above delivery)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from tracking.models import EventType, MessageEvent


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

"""Campaign fan-out and pump.

Fan-out writes every delivery row of the campaign with COPY, in chunks (one MessageBatch per chunk
and channel). A chunk is written *held* (status 'scheduled' until far in the future, which
housekeeping never promotes) unless it may go at once. The pump releases held chunks a few at a
time: when their throttle slot or local time has come and fewer than ``WINDOW`` released chunks
still have rows waiting. Pause and cancel therefore only touch the rows of a few chunks, in the
same transaction as the state change, however large the campaign; held rows of a cancelled
campaign can never be sent and are marked cancelled afterwards by a cleanup task.
"""

from __future__ import annotations

import json
from collections import namedtuple
import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from comms import errors
from comms.campaign_models import Campaign, CampaignBatch
from comms.segments import iter_chunks
from delivery.services import (
    HOLD_UNTIL, BulkRow, SendSpec, batches_cancel, batches_release, message_bulk_enqueue, message_bulk_enqueue_rows,
)

log = logging.getLogger(__name__)
State = Campaign.State
UTC = dt_timezone.utc
WINDOW = 3  # released chunks with rows still waiting, per campaign
# The fields of delivery's BulkRow as a plain tuple: a million of them build 5x faster than the dataclass.
DirectoryRow = namedtuple("DirectoryRow", BulkRow.__dataclass_fields__)


@dataclass
class FanoutStats:
    chunks: int = 0
    rows: int = 0
    skipped: int = 0
    released: int = 0
    stopped: str = ""


def dispatch_fanout(campaign: Campaign) -> None:
    from comms.tasks import campaign_fanout as task

    campaign_id = str(campaign.id)
    transaction.on_commit(lambda: task.apply_async(args=[campaign_id], queue="p3"))


def dispatch_cleanup(campaign: Campaign) -> None:
    from comms.tasks import campaign_cleanup as task

    campaign_id = str(campaign.id)
    transaction.on_commit(lambda: task.apply_async(args=[campaign_id], queue="p3"))


def _local_due(campaign: Campaign, tz: str, now: datetime) -> datetime:
    """The campaign's wall-clock time in `tz` on its day (today there when no day is given)."""
    try:
        zone = zoneinfo.ZoneInfo(tz or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    day = campaign.local_date or now.astimezone(zone).date()
    return datetime.combine(day, campaign.local_time, tzinfo=zone).astimezone(UTC)


def _chunks(campaign: Campaign, channel: str, size: int) -> Iterator[tuple[str, list]]:
    """(timezone, rows) per chunk. CSV rows are dicts (validated per row); directory rows are BulkRows."""
    from comms.campaign_audience import reachable

    shared = campaign.variables
    if campaign.audience_kind == Campaign.AudienceKind.CSV:
        rows = campaign.audience_list
        for start in range(0, len(rows), size):
            yield "", [{**r, "variables": {**shared, **r.get("variables", {})}} for r in rows[start:start + size]]
        return
    queryset, field = reachable(campaign, channel)  # push: recipients with an enabled device, by id
    variables = json.dumps(shared) if shared else "{}"
    zones = [None]
    if campaign.schedule_kind == Campaign.ScheduleKind.LOCAL:
        zones = sorted(set(queryset.values_list("timezone", flat=True).distinct()))
    for zone in zones:
        qs = queryset if zone is None else queryset.filter(timezone=zone)
        for rows in iter_chunks(qs, size, fields=(field, "locale")):
            yield zone or "", [DirectoryRow(pk, address, variables, "{}", locale) for pk, address, locale in rows]


def _open_batches(campaign: Campaign) -> list[CampaignBatch]:
    return list(campaign.batches.filter(released_at__isnull=False, drained_at__isnull=True))


_WAITING_SQL = ("SELECT EXISTS (SELECT 1 FROM delivery_message WHERE batch_id = %s "
                "AND status IN ('queued', 'sending', 'deferred'))")


def _refresh_drained(open_batches: list[CampaignBatch], now: datetime) -> int:
    """Mark released chunks with nothing left to send; returns how many still have rows waiting."""
    waiting = 0
    with connection.cursor() as cursor:
        for batch in open_batches:
            cursor.execute(_WAITING_SQL, [batch.batch_id])
            if cursor.fetchone()[0]:
                waiting += 1
            else:
                CampaignBatch.objects.filter(pk=batch.pk).update(drained_at=now)
    return waiting


def campaign_pump(campaign: Campaign, *, now: datetime) -> int:
    """Release due held chunks while the window has room. The caller holds the campaign's row lock."""
    if campaign.state != State.RUNNING:
        return 0
    waiting = _refresh_drained(_open_batches(campaign), now)
    released = 0
    while waiting < WINDOW:
        chunk = (campaign.batches.filter(released_at__isnull=True, send_at__lte=now)
                 .order_by("send_at", "seq").first())
        if chunk is None:
            break
        batches_release(due={chunk.batch_id: now}, now=now)
        CampaignBatch.objects.filter(pk=chunk.pk).update(released_at=now)
        waiting += 1
        released += 1
    if campaign.fanout_done and not campaign.batches.filter(drained_at__isnull=True).exists():
        campaign.state, campaign.finished_at = State.COMPLETED, now
        campaign.save(update_fields=["state", "finished_at"])
    return released


def campaign_fanout(*, campaign_id, now_fn=timezone.now) -> FanoutStats:
    """Write the campaign's rows chunk by chunk; resumable (chunks already written are skipped)."""
    stats = FanoutStats()
    campaign = Campaign.objects.select_related("tenant", "segment").get(pk=campaign_id)
    if campaign.fanout_done or campaign.state == State.CANCELLED:  # a repeated task: nothing left to write
        stats.stopped = "done"
        return stats
    throttle = campaign.throttle_per_minute
    size = min(settings.COMMS_CAMPAIGN_CHUNK, settings.COMMS_BULK_MAX_RECIPIENTS, throttle or 10**9)
    done = {(b.seq, b.channel) for b in campaign.batches.all()}
    start = campaign.start_at or now_fn()
    for channel in campaign.channels:
        zone_sent: dict[str, int] = {}
        for seq, (zone, rows) in enumerate(_chunks(campaign, channel, size)):
            now = now_fn()
            base = _local_due(campaign, zone, now) if campaign.schedule_kind == Campaign.ScheduleKind.LOCAL else start
            offset = int(zone_sent.get(zone, 0) * 60 / throttle) if throttle else 0
            zone_sent[zone] = zone_sent.get(zone, 0) + len(rows)
            if (seq, channel) in done:
                stats.skipped += 1
                continue
            if _write_chunk(campaign, channel, seq, rows, base + timedelta(seconds=offset), offset, now, stats):
                return stats
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        campaign.fanout_done = True
        campaign.save(update_fields=["fanout_done"])
        stats.released += campaign_pump(campaign, now=now_fn())
    return stats


def _write_chunk(campaign: Campaign, channel: str, seq: int, rows: list, send_at: datetime, offset: int,
                 now: datetime, stats: FanoutStats) -> bool:
    """One chunk in one transaction; True when the campaign was cancelled (stop)."""
    with transaction.atomic():
        # FOR NO KEY UPDATE conflicts with pause/cancel's FOR UPDATE: they wait for this chunk.
        locked = Campaign.objects.select_for_update(no_key=True).get(pk=campaign.pk)
        if locked.state == State.CANCELLED:
            stats.stopped = "cancelled"
            return True
        release = (locked.state == State.RUNNING and send_at <= now
                   and _refresh_drained(_open_batches(locked), now) < WINDOW)
        spec = SendSpec(channel=channel, template_key=campaign.template_key, category=campaign.category,
                        priority=campaign.priority, scheduled_for=None if release else HOLD_UNTIL,
                        metadata={"campaign_id": str(campaign.id), "campaign_name": campaign.name[:200]})
        key = f"campaign:{campaign.id}:{channel}:{seq}"
        try:
            if rows and isinstance(rows[0], dict):  # CSV rows: validated per row, bad ones skipped
                result = message_bulk_enqueue(tenant=campaign.tenant, spec=spec, recipients=rows, skip_invalid=True,
                                              idempotency_key=key, now=now)
            else:
                result = message_bulk_enqueue_rows(tenant=campaign.tenant, spec=spec, rows=rows, idempotency_key=key,
                                                   now=now)
        except errors.CommsError as exc:  # e.g. nobody in this chunk reachable on this channel
            log.warning("campaign %s chunk %s/%s not written: %s", campaign.id, seq, channel, exc.message)
            stats.skipped += 1
            return False
        if not result.created:
            stats.skipped += 1
            return False
        CampaignBatch.objects.create(campaign=campaign, seq=seq, channel=channel, batch_id=result.batch.id,
                                     offset_seconds=offset, send_at=send_at, size=result.batch.accepted,
                                     released_at=now if release else None)
        Campaign.objects.filter(pk=campaign.pk).update(queued_count=F("queued_count") + result.batch.accepted)
    stats.chunks += 1
    stats.rows += result.batch.accepted
    return False


def campaign_cleanup(*, campaign_id, now_fn=timezone.now) -> int:
    """After a cancel: mark the held rows of unreleased chunks cancelled, one chunk per transaction."""
    total = 0
    for batch in CampaignBatch.objects.filter(campaign_id=campaign_id, released_at__isnull=True).order_by("seq"):
        with transaction.atomic():
            cancelled, _ = batches_cancel(batch_ids=[batch.batch_id], now=now_fn(), reason="campaign cancelled")
            CampaignBatch.objects.filter(pk=batch.pk).update(released_at=now_fn(), drained_at=now_fn())
        total += cancelled
    return total

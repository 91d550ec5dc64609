"""Digests: events collected per recipient + key until due, then rendered once as a summary.

Concurrency: an open digest is unique per (tenant, recipient, key) (partial unique index). Adding an
item locks the open row; the flush takes due rows with ``FOR UPDATE SKIP LOCKED`` and closes them in
the same transaction as the enqueue, whose idempotency key is the digest id. Two flushers can
therefore never send one digest twice, and an item added concurrently lands either in the digest
being sent or in the next one, never in none.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.claims import due_rows
from comms.router.models import Digest, DigestItem
from delivery.services import SendSpec, message_enqueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestSpec:
    key: str
    template: str
    cadence: str = "window"  # window | hourly | daily | weekly
    window_seconds: int = 3600
    at: str = "09:00"
    weekday: int = 0  # Monday


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def due_at(spec: DigestSpec, *, tz: str, now: datetime) -> datetime:
    """When a digest opened at `now` is sent: after its window, or at the next cadence point.

    Daily and weekly points are wall-clock times in the recipient's zone (09:00 local), so the
    UTC instant moves with daylight saving time.
    """
    if spec.cadence == "window":
        return now + timedelta(seconds=spec.window_seconds)
    if spec.cadence == "hourly":
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    zone = _zone(tz)
    local = now.astimezone(zone)
    hour, minute = (int(x) for x in spec.at.split(":"))
    candidate = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if spec.cadence == "weekly":
        candidate += timedelta(days=(spec.weekday - local.weekday()) % 7)
        while candidate <= local:
            candidate += timedelta(days=7)
    else:
        while candidate <= local:
            candidate += timedelta(days=1)
    # Re-attach the zone after date arithmetic so the UTC offset is the one of that day.
    candidate = datetime.combine(candidate.date(), time(hour, minute), tzinfo=zone)
    return candidate.astimezone(zoneinfo.ZoneInfo("UTC"))


def digest_add(*, tenant, recipient, spec: DigestSpec, channels: list[str], category: str, priority: int,
               item_key: str, data: dict, now: datetime, event=None) -> Digest:
    """Add one item to the recipient's open digest for `spec.key`, opening one when needed."""
    with transaction.atomic():
        for _ in range(5):
            digest = (Digest.objects.select_for_update()
                      .filter(tenant=tenant, recipient=recipient, key=spec.key, state=Digest.State.OPEN).first())
            if digest is None:
                try:
                    with transaction.atomic():
                        digest = Digest.objects.create(
                            tenant=tenant, recipient=recipient, key=spec.key, template_key=spec.template,
                            channels=channels, category=category, priority=priority, cadence=spec.cadence,
                            opened_at=now, due_at=due_at(spec, tz=recipient.timezone, now=now))
                except IntegrityError:  # another process opened it first: lock theirs
                    continue
            DigestItem.objects.bulk_create([DigestItem(digest=digest, event=event, item_key=item_key, data=data,
                                                       created_at=now)], ignore_conflicts=True)
            return digest
    raise errors.Internal("could not open a digest")


@dataclass
class FlushStats:
    sent: int = 0
    empty: int = 0
    failed: int = 0


def _flush_one(digest: Digest, now: datetime, stats: FlushStats) -> None:
    items = list(digest.items.order_by("created_at", "id").values_list("data", flat=True))
    digest.closed_at = now
    if not items:
        digest.state = Digest.State.EMPTY
        stats.empty += 1
        digest.save(update_fields=["state", "closed_at"])
        return
    channels = list(digest.channels) or ["email"]
    spec = SendSpec(channel=channels[0], fallback=tuple(channels[1:]), recipient_id=digest.recipient.external_id,
                    template_key=digest.template_key, category=digest.category, priority=digest.priority,
                    variables={"events": items, "count": len(items), "key": digest.key},
                    metadata={"digest_id": str(digest.id), "digest_key": digest.key})
    try:
        with transaction.atomic():
            message, _ = message_enqueue(tenant=digest.tenant, spec=spec, idempotency_key=f"digest:{digest.id}",
                                         now=now)
    except errors.CommsError as exc:
        digest.state, digest.failure = Digest.State.FAILED, f"{exc.code}: {exc.message}"
        stats.failed += 1
        log.warning("digest %s not sent: %s", digest.id, digest.failure)
    else:
        digest.state, digest.message_id = Digest.State.SENT, message.id
        stats.sent += 1
    digest.save(update_fields=["state", "closed_at", "message_id", "failure"])


def digests_flush(*, now: datetime | None = None, limit: int = 500) -> FlushStats:
    """Send every due digest once (beat). Safe to run from many workers at the same time."""
    now = now or timezone.now()
    stats = FlushStats()
    open_digests = Digest.objects.select_related("recipient", "tenant").filter(state=Digest.State.OPEN)
    with due_rows(open_digests, now=now, limit=limit) as due:
        for digest in due:
            _flush_one(digest, now, stats)
    return stats


def digest_handler(*, message, decision, now: datetime) -> bool:
    """The send-time gate's digest collector (settings.COMMS_DIGEST_HANDLER).

    A queued message whose recipient asks for daily/weekly digests of its category is collected
    into that digest instead of being sent; False (send it after all) for a digest itself or a
    message without a directory recipient.
    """
    if message.recipient_id is None or (message.metadata or {}).get("digest_id"):
        return False
    cadence = (getattr(decision, "frequency", "") or "daily_digest").replace("_digest", "")
    spec = DigestSpec(key=f"pref:{message.category}:{cadence}", template=settings.COMMS_DIGEST_TEMPLATE,
                      cadence=cadence if cadence in ("hourly", "daily", "weekly") else "daily")
    data = {"event": (message.metadata or {}).get("event") or message.template_key, "subject": message.subject,
            "body": message.body, "payload": message.variables, "at": message.created_at.isoformat()}
    digest_add(tenant=message.tenant, recipient=message.recipient, spec=spec, channels=[message.channel],
               category=message.category, priority=message.priority, item_key=f"msg:{message.id}", data=data, now=now)
    return True

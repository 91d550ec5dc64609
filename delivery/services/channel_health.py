"""The ChannelHealth table: the Redis health counters of every provider, persisted for dashboards.

Beat's housekeeping calls ``channel_health_refresh`` every tick; it does the work at most once per
``COMMS_HEALTH_PERSIST_SECONDS`` across all beat/worker processes (a Redis lock), so the table lags
the live counters by at most that long.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from delivery import health
from delivery import routing
from delivery.models import ChannelHealth, ChannelProvider
from comms.redis import redis_client

log = logging.getLogger(__name__)
_LOCK = "comms:health:persist-lock"


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=dt_timezone.utc) if epoch else None


def _known_providers() -> dict[str, tuple[str, float | None]]:
    """name -> (channel, configured messages/s) for rows and settings' providers."""
    known: dict[str, tuple[str, float | None]] = {}
    for channel, path in routing.settings_providers():
        try:
            name = import_string(path).name
        except ImportError:
            continue
        known[name] = (channel, settings.COMMS_PROVIDER_RATE_LIMITS.get(name))
    for name, channel, rate in ChannelProvider.objects.values_list("name", "channel", "rate_limit"):
        known[name] = (channel, float(rate) if rate else None)
    return known


def channel_health_refresh(*, force: bool = False) -> int:
    """Upsert one ChannelHealth row per provider that reported; returns the rows written (0 when
    another process did it within the interval)."""
    if not force and not redis_client().set(_LOCK, "1", nx=True, ex=max(1, settings.COMMS_HEALTH_PERSIST_SECONDS)):
        return 0
    known = _known_providers()
    now = timezone.now()
    written = 0
    for name in health.reported_providers():
        snap = health.snapshot(name)
        channel, rate = known.get(name, ("", None))
        ChannelHealth.objects.update_or_create(provider=name, defaults={
            "channel": channel, "is_healthy": snap["state"] == "closed", "state": snap["state"],
            "consecutive_failures": snap["consecutive_failures"],
            "ok_1h": snap["ok_1h"], "failed_1h": snap["failed_1h"], "ok_24h": snap["ok_24h"],
            "failed_24h": snap["failed_24h"], "success_rate_1h": snap["success_rate_1h"],
            "success_rate_24h": snap["success_rate_24h"], "latency_avg_ms_1h": snap["avg_latency_ms_1h"],
            "latency_p95_ms_1h": snap["p95_latency_ms_1h"], "latency_avg_ms_24h": snap["avg_latency_ms_24h"],
            "latency_p95_ms_24h": snap["p95_latency_ms_24h"], "max_rate_per_sec": rate,
            "last_failure_code": snap["last_failure_code"][:64], "last_failure_at": _when(snap["last_failure_at"]),
            "opened_at": _when(snap["opened_at"]), "updated_at": now,
        })
        written += 1
    return written

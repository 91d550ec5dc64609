"""The figures of the ops dashboard, shaped once for the page, the stats API and /metrics."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from admin_console import stats, workers
from comms.enums import Priority, Status
from delivery import health
from delivery.models import ChannelProvider

log = logging.getLogger(__name__)
STATUS_COLUMNS = [Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.DEFERRED, Status.SENT, Status.DELIVERED,
                  Status.BOUNCED, Status.COMPLAINED, Status.FAILED, Status.DEAD, Status.BLOCKED, Status.CANCELLED]
QUALITY_EVENTS = ("sent", "delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def messages_url(tenant_id: Any = None, **filters: Any) -> str:
    """The admin message list filtered to exactly what a figure counts."""
    params = {k: v for k, v in filters.items() if v is not None}
    if tenant_id is not None:
        params["tenant__id__exact"] = str(tenant_id)
    return reverse("admin:delivery_message_changelist") + ("?" + urlencode(params) if params else "")


def queue(*, tenant_id: Any = None, now: datetime | None = None) -> dict:
    """Depth per priority × status, reasons for the waiting/refused states, oldest due age per priority."""
    now = now or timezone.now()
    rows = stats.queue_depth(tenant_id=tenant_id)
    depth: dict[int, dict[str, int]] = {p: defaultdict(int) for p in Priority.values}
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        depth[r.priority][r.status] += r.n
        by_channel[r.channel][r.status] += r.n
        if r.reason:
            reasons[r.status][r.reason] += r.n
    oldest = stats.oldest_queued(tenant_id=tenant_id, now=now)
    return {
        "priorities": [{"priority": p, "label": Priority(p).label, "oldest_queued_seconds": oldest[p],
                        "by_status": {s: depth[p].get(s, 0) for s in Status.values}} for p in Priority.values],
        "by_channel": {c: dict(v) for c, v in sorted(by_channel.items())},
        "reasons": {s: dict(sorted(v.items(), key=lambda kv: -kv[1])) for s, v in sorted(reasons.items())},
        "deferred_quiet_hours": sum(n for reason, n in reasons.get(Status.DEFERRED, {}).items() if "quiet" in reason.lower()),
    }


def rates(*, tenant_id: Any = None, now: datetime | None = None,
          rows: list[stats.RateRow] | None = None) -> list[dict]:
    """Per channel and provider: sent and failed in the last 5 min / 1 h / 24 h, with per-minute rates."""
    grouped: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(dict)
    for r in stats.event_rates(tenant_id=tenant_id, now=now) if rows is None else rows:
        grouped[(r.channel, r.provider)][r.event] = {"5m": r.last_5m, "1h": r.last_1h, "24h": r.last_24h}
    out = []
    for (channel, provider), events in sorted(grouped.items()):
        sent = events.get("sent", {"5m": 0, "1h": 0, "24h": 0})
        failed = {w: sum(events.get(e, {}).get(w, 0) for e in ("failed", "dead")) for w in ("5m", "1h", "24h")}
        if not any(sent.values()) and not any(failed.values()):
            continue
        out.append({"channel": channel, "provider": provider, "sent": sent, "failed": failed,
                    "per_minute": {"5m": round(sent["5m"] / 5, 1), "1h": round(sent["1h"] / 60, 1),
                                   "24h": round(sent["24h"] / 1440, 1)}})
    return out


def quality(*, by: str, tenant_id: Any = None, now: datetime | None = None, days: int = 7,
            rows: list[stats.Quality] | None = None) -> list[dict]:
    keys = stats.GROUPINGS[by]
    rows = stats.quality(by=by, tenant_id=tenant_id, now=now, days=days) if rows is None else rows
    return [{**dict(zip(keys, q.key)), **q.as_dict()} for q in rows]


def rolling_quality(*, tenant_id: Any = None, now: datetime | None = None, points: int = 14,
                    window: int = 7) -> list[dict]:
    """For each of the last `points` days, bounce/complaint rates over the `window` days ending that day."""
    days = stats.daily_quality(tenant_id=tenant_id, now=now, days=points + window - 1)
    out = []
    for end in range(window - 1, len(days)):
        span = [q for _, q in days[end - window + 1:end + 1]]
        total = stats.Quality((), {e: sum(q.n(e) for q in span) for e in stats.COUNTED})
        out.append({"day": days[end][0].isoformat(), "sent": total.n("sent"),
                    "hard_bounce_pct": total.pct("bounced"), "complaint_pct": total.pct("complained")})
    return out


def provider_names(extra: set[str] = frozenset()) -> list[tuple[str, str]]:
    """(channel, provider) for every configured provider plus any that appears in the figures."""
    found = set(ChannelProvider.objects.values_list("channel", "name"))
    for channel, path in settings.COMMS_CHANNEL_PROVIDERS.items():
        try:
            found.add((channel, import_string(path).name))
        except ImportError:
            log.warning("provider class %s does not import", path)
    for channel, paths in getattr(settings, "COMMS_CHANNEL_PROVIDERS_MORE", {}).items():
        for path in paths:  # a channel's further providers from settings (push: APNs beside FCM)
            try:
                found.add((channel, import_string(path).name))
            except ImportError:
                log.warning("provider class %s does not import", path)
    found |= set(extra)
    return sorted(p for p in found if p[1])


def thresholds() -> dict[str, float]:
    """The deliverability limits the charts draw: the same settings that raise alerts (tracking)."""
    return {"hard_bounce_pct": settings.COMMS_ALERT_HARD_BOUNCE_PCT, "complaint_pct": settings.COMMS_ALERT_COMPLAINT_PCT}


def _health(channel: str, name: str) -> dict:
    try:
        return {"channel": channel, **health.snapshot(name)}
    except Exception as exc:  # Redis down: say so on the page rather than fail it
        return {"channel": channel, "provider": name, "state": f"unknown ({type(exc).__name__})"}


def _health_many(pairs: list[tuple[str, str]]) -> list[dict]:
    """delivery.health.snapshot for many providers in one Redis pipeline, with their channel."""
    if not pairs:
        return []
    try:
        rows = health.snapshots([name for _channel, name in pairs])
    except Exception:
        log.warning("provider health unreadable in one pipeline; reading one by one", exc_info=True)
        return [_health(c, n) for c, n in pairs]
    return [{"channel": channel, **row} for (channel, _name), row in zip(pairs, rows)]


def providers(*, seen: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """Circuit-breaker state and success rates of every provider (delivery.health)."""
    return _health_many(provider_names(seen))


def worker_list() -> list[dict]:
    try:
        return workers.alive()
    except Exception:
        log.warning("worker heartbeats unreadable", exc_info=True)
        return []


_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="dashboard-redis")


def snapshot(*, tenant_id: Any = None, now: datetime | None = None) -> dict:
    """Everything the dashboard shows, as plain data.

    Provider health and worker heartbeats live in Redis; they are read on a helper thread while
    the aggregate queries run (the thread never touches the database).
    """
    now = now or timezone.now()
    configured = provider_names()
    health_future = _pool.submit(_health_many, configured)
    workers_future = _pool.submit(worker_list)
    rate_rows, per_hour = stats.activity(tenant_id=tenant_id, now=now)
    rates_out = rates(rows=rate_rows)
    grouped = stats.quality_all(tenant_id=tenant_id, now=now)
    q = {by: quality(by=by, rows=grouped[by]) for by in ("channel", "provider", "template")}
    seen = {(r["channel"], r["provider"]) for r in rates_out} | {(x["channel"], x["provider"]) for x in q["provider"]}
    extra = sorted(set(seen) - set(configured))
    extra_future = _pool.submit(_health_many, [(c, n) for c, n in extra if n])
    queue_data = queue(tenant_id=tenant_id, now=now)
    rolling = rolling_quality(tenant_id=tenant_id, now=now)
    provider_rows = health_future.result() + extra_future.result()
    return {
        "generated_at": now.isoformat(),
        "queue": queue_data,
        "rates": rates_out,
        "sent_per_hour": [(at.isoformat(), n) for at, n in per_hour],
        "workers": workers_future.result(),
        "quality": {"total": (quality(by="total", rows=grouped["total"]) or [stats.Quality(()).as_dict()])[0],
                    **q,
                    "rolling": rolling,
                    "thresholds": thresholds()},
        "providers": sorted(provider_rows, key=lambda p: (p["channel"], p["provider"])),
    }


def since_param(now: datetime, window: str) -> str:
    delta = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "24h": timedelta(hours=24),
             "7d": timedelta(days=7)}[window]
    return (now - delta).strftime("%Y-%m-%d %H:%M:%S")



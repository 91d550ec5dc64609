"""Engagement and re-engagement scores per recipient, and the channel each one engages on
(AI-COM-006/009/012).

Why this model and not a learnt one: the signals are few (when messages were sent, on which channel,
and whether each was opened, clicked or read), so a recency-weighted, smoothed engagement rate is as
good as anything fitted and explains itself. Per channel:

    rate_c = (engaged_c + A * P0) / (sent_c + A)      each message weighted 0.5 ** (age / half-life)

with a prior of P0 = 0.2 over A = 2 messages (two unanswered messages do not make a recipient "dead",
twenty do). The **score** is half the overall smoothed rate and half the recency of the last engagement
(0.5 ** (days since / half-life)), in 0..1. The **re-engagement** score is the share of messages
engaged with over the whole window times (1 - recency): high for those who used to engage and stopped
(win-back candidates), low for both the active and the never-engaged. The **best channel** is the
channel with the highest smoothed rate among those with a send. bench figures: docs/insight.md.

Scores are stored (RecipientEngagement) by ``engagement_refresh`` (beat, daily) so segments filter
them in SQL and routing reads one row per recipient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from comms import errors
from comms.models import Recipient
from delivery.models import InAppNotification, Message
from tracking.models import MessageEvent, RecipientEngagement

PRIOR_RATE = 0.2
PRIOR_WEIGHT = 2.0
SCORE_FIELDS = {"engagement_score": "score", "reengagement_score": "reengagement"}


@dataclass
class ChannelHistory:
    sent: int = 0
    engaged: int = 0
    sent_w: float = 0.0
    engaged_w: float = 0.0


def smoothed(engaged_w: float, sent_w: float) -> float:
    return (engaged_w + PRIOR_WEIGHT * PRIOR_RATE) / (sent_w + PRIOR_WEIGHT)


def score_of(history: dict[str, ChannelHistory], last_engaged: datetime | None, *, now: datetime,
             half_life_days: float) -> tuple[float, float, str]:
    """(score, re-engagement, best channel) from one recipient's per-channel history."""
    sent_w = sum(h.sent_w for h in history.values())
    engaged_w = sum(h.engaged_w for h in history.values())
    recency = 0.0
    if last_engaged is not None:
        days = max((now - last_engaged).total_seconds() / 86400.0, 0.0)
        recency = 0.5 ** (days / half_life_days)
    score = 0.5 * min(smoothed(engaged_w, sent_w), 1.0) + 0.5 * recency
    sent = sum(h.sent for h in history.values())
    engaged = sum(h.engaged for h in history.values())
    reengagement = (engaged / sent if sent else 0.0) * (1.0 - recency)
    best = ""
    if engaged:
        best = max((c for c, h in history.items() if h.sent),
                   key=lambda c: (smoothed(history[c].engaged_w, history[c].sent_w), history[c].engaged))
    return round(score, 4), round(reengagement, 4), best


_HISTORY = """
SELECT m.tenant_id, m.recipient_id, m.channel, count(*),
       count(*) FILTER (WHERE e.engaged_at IS NOT NULL OR i.read_at IS NOT NULL),
       sum(power(0.5, extract(epoch FROM (%(now)s - m.sent_at)) / 86400.0 / %(hl)s)),
       coalesce(sum(power(0.5, extract(epoch FROM (%(now)s - m.sent_at)) / 86400.0 / %(hl)s))
                FILTER (WHERE e.engaged_at IS NOT NULL OR i.read_at IS NOT NULL), 0),
       max(greatest(e.engaged_at, i.read_at))
  FROM {message} m
  LEFT JOIN LATERAL (SELECT min(ev.timestamp) AS engaged_at FROM {event} ev
                      WHERE ev.message_id = m.id AND ev.event_type IN ('opened', 'clicked')) e ON true
  LEFT JOIN {inapp} i ON i.message_id = m.id
 WHERE m.sent_at >= %(since)s AND m.sent_at <= %(now)s AND m.recipient_id IS NOT NULL {where}
 GROUP BY 1, 2, 3"""


def engagement_refresh(*, tenant_id: Any = None, recipient_ids: Iterable[Any] | None = None,
                       now: datetime | None = None) -> int:
    """Recompute and store the scores of the recipients with sends in the window; returns how many."""
    now = now or timezone.now()
    hl = settings.COMMS_ENGAGEMENT_HALF_LIFE_DAYS
    params: dict[str, Any] = {"now": now, "hl": hl, "since": now - timedelta(days=settings.COMMS_ENGAGEMENT_WINDOW_DAYS)}
    where = ""
    if tenant_id is not None:
        where += " AND m.tenant_id = %(tenant)s"
        params["tenant"] = tenant_id
    if recipient_ids is not None:
        where += " AND m.recipient_id = ANY(%(ids)s)"
        params["ids"] = [str(r) for r in recipient_ids]
    sql = _HISTORY.format(message=Message._meta.db_table, event=MessageEvent._meta.db_table,
                          inapp=InAppNotification._meta.db_table, where=where)
    people: dict[Any, tuple[Any, dict[str, ChannelHistory], datetime | None]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for tenant, recipient, channel, sent, engaged, sent_w, engaged_w, last in cursor.fetchall():
            _, history, prev = people.setdefault(recipient, (tenant, {}, None))
            history[channel] = ChannelHistory(sent, engaged, float(sent_w), float(engaged_w))
            latest = max([t for t in (prev, last) if t is not None], default=None)
            people[recipient] = (tenant, history, latest)
    rows = []
    for recipient, (tenant, history, last) in people.items():
        score, reengagement, best = score_of(history, last, now=now, half_life_days=hl)
        rows.append(RecipientEngagement(
            tenant_id=tenant, recipient_id=recipient, score=score, reengagement=reengagement, best_channel=best,
            channels={c: {"sent": h.sent, "engaged": h.engaged, "rate": round(smoothed(h.engaged_w, h.sent_w), 4)}
                      for c, h in history.items()},
            last_engaged_at=last, computed_at=now))
    with transaction.atomic():
        RecipientEngagement.objects.bulk_create(
            rows, batch_size=2000, update_conflicts=True, unique_fields=["recipient_id"],
            update_fields=["score", "reengagement", "best_channel", "channels", "last_engaged_at", "computed_at"])
    return len(rows)


def best_channels(*, tenant_id: Any, recipient_ids: list[Any]) -> dict[Any, str]:
    """{recipient id: the channel they engage on} for those with one (the router's "best channel first")."""
    rows = RecipientEngagement.objects.filter(tenant_id=tenant_id, recipient_id__in=recipient_ids).exclude(
        best_channel="").values_list("recipient_id", "best_channel")
    return {str(r): c for r, c in rows}


def recipient_scores(*, recipient_id: Any) -> dict[str, float]:
    """{"engagement_score", "reengagement_score"} of one recipient (0 without a row): journeys' branch
    conditions read them as recipient.engagement_score."""
    row = RecipientEngagement.objects.filter(recipient_id=recipient_id).values_list("score", "reengagement").first()
    return {"engagement_score": row[0] if row else 0.0, "reengagement_score": row[1] if row else 0.0}


_SCORE_OPS = {"lt": "lt", "lte": "lte", "gt": "gt", "gte": "gte", "eq": "exact", "ne": "exact"}


def score_validate(*, field: str, op: str, value: Any) -> float:
    """A segment condition on a score: a number in 0..1 and a comparison, else COMMS_AUDIENCE_INVALID."""
    if op not in _SCORE_OPS:
        raise errors.AudienceInvalid(f"'{op}' does not apply to '{field}'.", details={"allowed": sorted(_SCORE_OPS)})
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise errors.AudienceInvalid(f"'{field}' compares with a number between 0 and 1.",
                                     details={"field": field, "value": value})
    return float(value)


def score_q(*, field: str, op: str, value: Any, pk: str = "pk") -> Q:
    """A filter on recipients (``pk`` names their id) by a stored score; a recipient without a row
    has never been sent anything in the window and scores 0."""
    number = score_validate(field=field, op=op, value=value)
    column = SCORE_FIELDS[field]
    matching = RecipientEngagement.objects.filter(**{f"{column}__{_SCORE_OPS[op]}": number}).values("recipient_id")
    scored = RecipientEngagement.objects.values("recipient_id")
    zero_matches = {"lt": 0 < number, "lte": True, "gt": False, "gte": number == 0, "eq": number == 0,
                    "ne": number != 0}[op]
    q = Q(**{f"{pk}__in": matching})
    if op == "ne":
        q = ~q
        return q if zero_matches else q & Q(**{f"{pk}__in": scored})
    return q | ~Q(**{f"{pk}__in": scored}) if zero_matches else q


HISTOGRAM_BINS = 10


def engagement_overview(*, tenant_id: Any = None, candidates: int = 25, min_reengagement: float = 0.3) -> dict:
    """The console's view of the stored scores: a histogram of engagement_score (10 bins of 0.1), the
    best-channel mix, and the win-back candidates (highest reengagement_score first, at least
    ``min_reengagement``) with their best channel. Reads RecipientEngagement only (its tenant indexes)."""
    rows = RecipientEngagement.objects.all()
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    table = RecipientEngagement._meta.db_table
    where, params = ("WHERE tenant_id = %s", [str(tenant_id)]) if tenant_id is not None else ("", [])
    with connection.cursor() as cursor:
        # score 1.0 falls in the last bin, not an eleventh
        cursor.execute(f"SELECT least(floor(score * {HISTOGRAM_BINS})::int, {HISTOGRAM_BINS - 1}), count(*) "
                       f"FROM {table} {where} GROUP BY 1", params)
        bins = dict(cursor.fetchall())
    histogram = [{"from": round(i / HISTOGRAM_BINS, 1), "to": round((i + 1) / HISTOGRAM_BINS, 1),
                  "recipients": bins.get(i, 0)} for i in range(HISTOGRAM_BINS)]
    mix = {c or "": n for c, n in rows.values_list("best_channel").annotate(n=Count("id")).order_by()}
    picked = list(rows.filter(reengagement__gte=min_reengagement).order_by("-reengagement", "recipient_id")
                  [:candidates].values("recipient_id", "score", "reengagement", "best_channel", "last_engaged_at"))
    names = dict(Recipient.objects.filter(pk__in=[p["recipient_id"] for p in picked]).values_list("pk", "external_id"))
    for p in picked:
        p["external_id"] = names.get(p["recipient_id"], str(p["recipient_id"]))
    return {"recipients": sum(bins.values()), "histogram": histogram,
            "channel_mix": sorted(mix.items(), key=lambda kv: (-kv[1], kv[0])), "candidates": picked,
            "min_reengagement": min_reengagement}

"""Adding written outcomes to OutcomeDay (one upsert per flush), and pruning old days.

Called from the outcome path (delivery.services.outcomes.record_many) after the fenced write, with
the outcomes that were written, as the cost roll-up is (delivery.costs.recording): outcomes are
grouped in Python and merged with one ``INSERT … ON CONFLICT DO UPDATE``, so the engine pays one
statement per flush, never one per message. Rows go in key order, so two workers upserting the same
keys lock them in the same order (a function scan returns the array in order) and cannot deadlock.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from comms.enums import LogEvent
from delivery.latency.buckets import BUCKETS, bucket_of

log = logging.getLogger(__name__)

# The outcomes counted: the ones that end an attempt with a provider's (or the engine's) answer.
COUNTED = (LogEvent.SENT, LogEvent.FAILED, LogEvent.DEAD, LogEvent.RETRYING)


def _merge(column: str) -> str:
    """column = the element-wise sum of both histograms, inline (a SQL function per merged row cost more,
    and 164 spelled-out subscript sums made a 22 KB statement that Django's client-side binding re-parses
    at every flush: bench/analytics_10m.py --write)."""
    return (f"{column} = CASE WHEN t.{column} IS NULL THEN EXCLUDED.{column} WHEN EXCLUDED.{column} IS NULL "
            f"THEN t.{column} ELSE ARRAY(SELECT a + b FROM unnest(t.{column}, EXCLUDED.{column}) WITH ORDINALITY "
            f"AS u(a, b, i) ORDER BY i) END")


_UPSERT = f"""
{{async_cte}}INSERT INTO delivery_outcomeday AS t (day, tenant_id, channel, provider, priority, outcome, code, n, wait_hist,
                                      call_hist)
SELECT day, tenant_id, channel, provider, priority, outcome, code, n, wait_hist::bigint[], call_hist::bigint[]
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(day date, tenant_id uuid, channel text, provider text,
       priority smallint, outcome text, code text, n bigint, wait_hist text, call_hist text){{async_join}}
ON CONFLICT ON CONSTRAINT delivery_outcomeday_unique DO UPDATE
   SET n = t.n + EXCLUDED.n, {_merge("wait_hist")}, {_merge("call_hist")}
"""
# As the outcome write itself (delivery.services.outcomes): without COMMS_OUTCOME_SYNC_COMMIT the upsert
# commits without waiting for the WAL flush (a transaction-local setting, safe behind PgBouncer); waiting
# for it was most of the upsert's time here (bench/analytics_10m.py --write).
_UPSERTS = {True: _UPSERT.format(async_cte="", async_join=""),
            False: _UPSERT.format(async_cte="WITH _c AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', "
                                            "true)) ", async_join=", _c")}


def queue_wait_ms(outcome: Any) -> float:
    """Due → sent: from the later of creation and the scheduled time to the outcome's clock."""
    m = outcome.message
    due = max(m.created_at, m.scheduled_for) if m.scheduled_for else m.created_at
    return (outcome.now - due).total_seconds() * 1000


def _groups(outcomes: list[Any]) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for o in outcomes:
        if o.event not in COUNTED:
            continue
        m = o.message
        provider = (o.provider or "").split("@")[0][:64]  # the vendor, as the cost roll-up names it
        key = (o.now.astimezone(dt_timezone.utc).date(), str(m.tenant_id), m.channel, provider, int(m.priority),
               str(o.event), "" if o.result.ok else (o.result.code or "")[:64])
        g = groups.setdefault(key, [0, None, None])
        g[0] += 1
        if o.event == LogEvent.SENT:
            g[1] = g[1] or [0] * BUCKETS
            g[1][bucket_of(queue_wait_ms(o))] += 1
        if getattr(o, "provider_ms", None) is not None:
            g[2] = g[2] or [0] * BUCKETS
            g[2][bucket_of(o.provider_ms)] += 1
    return groups


def _literal(counts: list[int] | None) -> str | None:
    """A PostgreSQL array literal: the text cast is several times cheaper than JSON array → bigint[]."""
    return None if counts is None else "{" + ",".join(map(str, counts)) + "}"


def rollup(outcomes: list[Any]) -> None:
    """Add the written outcomes to OutcomeDay (one statement; nothing when none is counted)."""
    groups = _groups(outcomes)
    if not groups:
        return
    rows = [{"day": k[0].isoformat(), "tenant_id": k[1], "channel": k[2], "provider": k[3], "priority": k[4],
             "outcome": k[5], "code": k[6], "n": g[0], "wait_hist": _literal(g[1]), "call_hist": _literal(g[2])}
            for k, g in sorted(groups.items(), key=lambda kv: (kv[0][0], *map(str, kv[0][1:])))]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_UPSERTS[bool(settings.COMMS_OUTCOME_SYNC_COMMIT)], {"rows": json.dumps(rows)})
    except DatabaseError:  # the outcomes are written; only their statistics miss them
        log.warning("outcome statistics of %d groups not written", len(groups), exc_info=True)
        if connection.in_atomic_block:
            raise


def outcome_days_prune(*, before: date) -> int:
    """Drop the days before `before` (an index range on the unique key, whose first column is day)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM delivery_outcomeday WHERE day < %s", [before])
        return cursor.rowcount

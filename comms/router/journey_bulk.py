"""Segment entry at scale: a segment's recipients become journey runs through COPY.

``journeys.journey_enrol_segment`` builds ORM objects and ``bulk_create``s them; at a million
recipients that is minutes of Python per chunk. Here each chunk of recipient ids is streamed with
COPY (psycopg 3) into a temporary table, and one ``INSERT … SELECT`` moves the eligible ones into
the run table. COPY itself cannot skip conflicting rows, so the staging step is what lets the
insert keep the same guarantees as a single entry:

- ``ON CONFLICT DO NOTHING`` on the one-live-run index (``journey_run_one_live``): a recipient
  already in the journey, or entered concurrently through an event, is skipped, never doubled;
- the re-entry policies ``once`` (no earlier run at all) and ``after`` (no run entered within N
  days) are an anti-join against the recipient's earlier runs, in the same statement.

Runs start on the active version at its ``start`` step, due now, exactly as ``journey_enter``
makes them, so the ordinary claim/advance picks them up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from uuid_utils.compat import uuid7

from comms import errors
from comms.audit import audit_record
from comms.campaigns.segments import audience_queryset, iter_chunks
from comms.router.journeys import _dispatch
from comms.router.models import Journey, JourneyRun

STAGE = "journey_bulk_stage"


@dataclass
class BulkEntry:
    """What a segment entry did: recipients read from the segment, runs created, recipients skipped."""

    audience: int = 0
    created: int = 0
    skipped: int = 0
    chunks: int = 0


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _policy_sql(policy: dict) -> tuple[str, list]:
    """The re-entry policy as a NOT EXISTS clause over the recipient's earlier runs of this journey."""
    if policy.get("policy") == "once":
        return "AND NOT EXISTS (SELECT 1 FROM {runs} r WHERE r.journey_id = %s AND r.recipient_id = s.recipient_id)", []
    if policy.get("policy") == "after":
        return ("AND NOT EXISTS (SELECT 1 FROM {runs} r WHERE r.journey_id = %s AND r.recipient_id = s.recipient_id "
                "AND r.entered_at > %s)"), ["cutoff"]
    return "", []  # once_at_a_time: the one-live-run index alone decides


def journey_enter_segment_copy(*, journey: Journey, segment: str | None = None, now: datetime | None = None,
                               chunk: int = 50_000, actor=None, ip: str | None = None) -> BulkEntry:
    """Enter every recipient of the entry segment (or ``segment``) into ``journey``, COPY per chunk.

    Each chunk commits on its own (a million rows in one transaction would hold the one-live-run
    index's locks for the whole entry); a crash mid-way leaves the committed chunks, and running the
    entry again skips those recipients through the same index, so it is safe to repeat.
    """
    now = now or timezone.now()
    journey = Journey.objects.select_related("active_version", "tenant").get(pk=journey.pk)
    version = journey.active_version
    if version is None:
        raise errors.JourneyState("The journey has no version.")
    segment = segment or version.definition["entry"].get("segment")
    if not segment:
        raise errors.JourneyState("This journey's entry is not a segment.")
    if journey.status != Journey.Status.ACTIVE:
        raise errors.JourneyState(f"The journey is {journey.status}; it takes no new entries.")
    policy = version.definition.get("reentry", {"policy": "once_at_a_time"})
    clause, extra = _policy_sql(policy)
    runs = connection.ops.quote_name(JourneyRun._meta.db_table)
    clause = clause.format(runs=runs)
    cutoff = now - timedelta(days=policy.get("days", 0))
    policy_params = ([journey.pk, cutoff] if extra else [journey.pk]) if clause else []
    context = _copy_text(json.dumps({"entry": {}, "source": f"segment:{segment}"}))
    # Everything but the id and the recipient is the same on every line: one pre-escaped tail.
    tail = f"\t{context}\n"
    insert = f"""
        INSERT INTO {runs} (id, tenant_id, journey_id, version_id, recipient_id, state, step, seq, next_due_at,
                            lease_owner, lease_until, waiting_for, wait_condition, context, entered_at,
                            exited_at, converted_at, exit_reason, path)
        SELECT s.id, %s, %s, %s, s.recipient_id, 'active', %s, 0, %s, '', NULL, '', '', s.context, %s,
               NULL, NULL, '', '[]'::jsonb
        FROM {STAGE} s WHERE TRUE {clause}
        ON CONFLICT DO NOTHING"""
    params = [journey.tenant_id, journey.pk, version.pk, version.definition["start"], now, now, *policy_params]
    stats = BulkEntry()
    queryset = audience_queryset(tenant=journey.tenant, audience={"segment": segment})
    for rows in iter_chunks(queryset, chunk, fields=()):
        stats.chunks += 1
        stats.audience += len(rows)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (id uuid, recipient_id uuid, context jsonb) "
                           "ON COMMIT DELETE ROWS")
            with cursor.copy(f"COPY {STAGE} (id, recipient_id, context) FROM STDIN") as copy:
                copy.write("".join(f"{uuid7()}\t{row[0]}{tail}" for row in rows))
            cursor.execute(insert, params)
            stats.created += cursor.rowcount
    stats.skipped = stats.audience - stats.created
    with transaction.atomic():
        audit_record(actor=actor, action="journey.enter_segment", target=journey, ip=ip, tenant=journey.tenant,
                     diff={"segment": segment, "version": version.version, "created": stats.created,
                           "skipped": stats.skipped})
    if stats.created:
        _dispatch(None)
    return stats

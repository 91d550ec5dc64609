"""The claim/lease machinery itself, below the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from comms.enums import Priority, Status
from delivery.models import ChannelProvider, Message
from delivery.providers.base import SendResult
from delivery.services import SendSpec, claim_batch, drain_all, leases_reap, message_bulk_enqueue, message_enqueue
from delivery.services.engine import DrainStats, next_retry_at, record_outcome
from tests.conftest import claim_in_threads


def _spec(priority=2, **kw):
    return SendSpec(channel="email", subject="s", body="b", priority=priority, **kw)


def _bulk(tenant, n, priority=2, prefix="u"):
    return message_bulk_enqueue(tenant=tenant, spec=_spec(priority),
                                recipients=[{"to": f"{prefix}{i}@example.com"} for i in range(n)])


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_share_a_row(tenant):
    _bulk(tenant, 600)
    claimed = claim_in_threads()
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == 600 and len(set(everything)) == 600
    assert sum(1 for ids in claimed.values() if ids) >= 2  # the work really was shared
    assert Message.objects.filter(status=Status.SENDING).count() == 600
    assert set(Message.objects.values_list("lease_owner", flat=True)) == {n for n, ids in claimed.items() if ids}


@pytest.mark.django_db
def test_claim_takes_higher_priorities_first(tenant):
    _bulk(tenant, 5, priority=Priority.P3, prefix="p3-")
    _bulk(tenant, 2, priority=Priority.P1, prefix="p1-")
    _bulk(tenant, 1, priority=Priority.P0, prefix="p0-")
    batch = claim_batch(max_priority=3, limit=4, owner="t")
    assert [m.priority for m in batch] == [0, 1, 1, 3]
    assert claim_batch(max_priority=1, limit=10, owner="t") == []  # a P0/P1 pool never takes P3


@pytest.mark.django_db
def test_p0_claim_reads_only_its_own_index_range(tenant):
    _bulk(tenant, 20_000, priority=Priority.P3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE delivery_message")
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM delivery_message WHERE status = 'queued' AND priority = 0 "
            "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 10 FOR UPDATE SKIP LOCKED")
        plan = cursor.fetchone()[0][0]
    text = str(plan)
    assert "message_claim_idx" in text
    assert _max_rows(plan["Plan"]) == 0  # not one P3 row is looked at


def _max_rows(node) -> int:
    rows = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    return max([rows, *(_max_rows(child) for child in node.get("Plans", []))])


@pytest.mark.django_db
def test_expired_lease_returns_to_queue_or_dlq(tenant, settings):
    """The dead worker's first stranded row was in flight: it keeps the charge (DLQ when out of
    attempts); the row it never reached gets its charge back and is due at once."""
    settings.COMMS_SEND_CONCURRENCY = 1  # the serial engine: one row in flight
    _bulk(tenant, 2)
    now = timezone.now()
    first, second = claim_batch(max_priority=2, limit=2, owner="dead-worker", now=now)
    queued_at = second.next_attempt_at
    Message.objects.filter(id=first.id).update(attempt_count=5)  # its last allowed attempt
    assert leases_reap(now=now + timedelta(seconds=60)) == 0
    assert leases_reap(now=now + timedelta(seconds=121)) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.failure_code) == (Status.DEAD, "lease_expired")
    assert (second.status, second.lease_owner, second.attempt_count) == (Status.QUEUED, None, 0)
    assert second.next_attempt_at == queued_at  # keeps its place at the head of the queue


def test_a_dead_workers_first_in_flight_rows_keep_their_charge(tenant, settings):
    """With N sends in flight, the first N stranded rows (claim order) may have been on the wire: they
    keep the attempt and wait the crash backoff; the rows after them get their charge back."""
    settings.COMMS_SEND_CONCURRENCY = 2
    _bulk(tenant, 3)
    now = timezone.now()
    rows = claim_batch(max_priority=2, limit=3, owner="dead-worker", now=now)
    assert leases_reap(now=now + timedelta(seconds=121)) == 3
    for row in rows:
        row.refresh_from_db()
    assert [(r.status, r.attempt_count) for r in rows] == [(Status.QUEUED, 1), (Status.QUEUED, 1), (Status.QUEUED, 0)]
    assert rows[0].next_attempt_at == rows[1].next_attempt_at > now + timedelta(seconds=121)
    assert rows[2].next_attempt_at <= now + timedelta(seconds=121)


@pytest.mark.django_db
def test_claims_take_ties_in_creation_order_whatever_the_physical_order(tenant, settings):
    """A bulk COPY gives every row the same next_attempt_at. Ties must go in creation (uuid7) order,
    not in heap order: a reaping UPDATE moves the rows a dead worker never reached to the end of the
    heap, and the chaos run (R1) saw them wait ~100 s behind a 50,000-row backlog."""
    settings.COMMS_SEND_CONCURRENCY = 1  # one row in flight: the dead worker's first
    _bulk(tenant, 300)
    with connection.cursor() as cursor:  # rewrite the heap newest-first: physical order = reverse creation order
        cursor.execute("CREATE TEMP TABLE reversed AS SELECT * FROM delivery_message ORDER BY id DESC")
        cursor.execute("DELETE FROM delivery_message")
        cursor.execute("INSERT INTO delivery_message SELECT * FROM reversed")
        cursor.execute("ANALYZE delivery_message")
    oldest = list(Message.objects.order_by("id").values_list("id", flat=True)[:10])
    now = timezone.now()
    stranded = claim_batch(max_priority=2, limit=10, owner="dead-worker", now=now)
    assert [m.id for m in stranded] == oldest
    assert leases_reap(now=now + timedelta(seconds=200)) == 10
    again = claim_batch(max_priority=2, limit=9, owner="next-worker", now=now + timedelta(seconds=201))
    assert [m.id for m in again] == oldest[1:]  # the one it was sending waits out the crash backoff


@pytest.mark.django_db(transaction=True)
def test_an_outcome_survives_a_dropped_database_connection(tenant):
    """The provider already has the message when its outcome is written: if the database drops the
    worker's connection at that moment, the write is retried on a fresh one instead of leaving the
    row to lease expiry (which would send it a second time)."""
    import psycopg

    _bulk(tenant, 1)
    [m] = claim_batch(max_priority=2, limit=1, owner="w1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:  # another session ends ours, as a restart would
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    stats = DrainStats()
    record_outcome(m, SendResult.sent("<ref@x>"), owner="w1", provider="smtp", now=timezone.now(), stats=stats)
    assert stats.sent == 1
    m.refresh_from_db()
    assert (m.status, m.provider_ref, m.lease_owner) == (Status.SENT, "<ref@x>", None)


@pytest.mark.django_db
def test_an_outcome_from_a_worker_that_lost_its_lease_is_not_recorded(tenant):
    _bulk(tenant, 1)
    now = timezone.now()
    [stale] = claim_batch(max_priority=2, limit=1, owner="slow", now=now)
    leases_reap(now=now + timedelta(seconds=200))
    later = now + timedelta(seconds=201 + settings.COMMS_CRASH_BACKOFF_SECONDS)  # it was in flight: backoff
    [fresh] = claim_batch(max_priority=2, limit=1, owner="fast", now=later)
    stats = DrainStats()
    record_outcome(stale, SendResult.sent("<late@x>"), owner="slow", provider="smtp", now=timezone.now(), stats=stats)
    assert (stats.sent, stats.lost_lease) == (0, 1)
    fresh.refresh_from_db()
    assert fresh.status == Status.SENDING and fresh.lease_owner == "fast"


def test_retry_schedule_and_budget():
    now = timezone.now()
    first = next_retry_at(priority=2, attempt=1, origin=now, now=now)
    assert timedelta(seconds=54) <= first - now <= timedelta(seconds=66)
    assert next_retry_at(priority=2, attempt=5, origin=now, now=now) is None  # 1 + 4 retries
    assert next_retry_at(priority=0, attempt=1, origin=now, now=now) - now <= timedelta(seconds=11)
    old = now - timedelta(hours=23, minutes=59)
    assert next_retry_at(priority=3, attempt=4, origin=old, now=now) is None  # would pass the 24 h max age


@pytest.mark.django_db
def test_channel_provider_rows_route_email(tenant, other_tenant, smtp_sink):
    import os

    ChannelProvider.objects.create(
        tenant=tenant, channel="email", name="relay-a", provider_class="delivery.providers.smtp.SmtpProvider",
        is_primary=True, options={"port": int(os.environ["EMAIL_PORT"]), "from_email": "Alerts <alerts@a.example>"},
    )
    mine, _ = message_enqueue(tenant=tenant, spec=_spec(to="x@example.com"))
    theirs, _ = message_enqueue(tenant=other_tenant, spec=_spec(to="y@example.com"))
    drain_all()
    by_to = {m["To"]: m for m in smtp_sink.messages}
    assert by_to["x@example.com"]["From"] == "Alerts <alerts@a.example>"
    assert "no-reply@comms.localhost" in by_to["y@example.com"]["From"]  # other tenant: the default
    provider = ChannelProvider.objects.get(name="relay-a")
    provider.credentials = {"password": "s3cret"}
    provider.save()
    raw = ChannelProvider.objects.filter(pk=provider.pk).values_list("credentials_encrypted", flat=True).get()
    assert "s3cret" not in raw and ChannelProvider.objects.get(pk=provider.pk).credentials == {"password": "s3cret"}


@pytest.mark.django_db
def test_throttle_per_api_key(api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
    codes = [api.get("/api/v1/messages").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = api.get("/api/v1/messages")
    assert response.json()["code"] == "COMMS_RATE_LIMITED"
    assert 0 < int(response["Retry-After"]) <= 61


@pytest.mark.django_db
def test_health(client):
    body = client.get("/api/v1/health").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_delivery_log_is_append_only(tenant):
    from django.db import DatabaseError, transaction

    from delivery.models import DeliveryLog

    message = message_enqueue(tenant=tenant, spec=_spec(to="a@example.com"))[0]
    entry = DeliveryLog.objects.create(message=message, event="retrying", detail="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        DeliveryLog.objects.filter(pk=entry.pk).update(detail="rewritten")
    assert DeliveryLog.objects.get(pk=entry.pk).detail == "x"

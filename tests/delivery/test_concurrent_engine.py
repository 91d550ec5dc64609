"""Many sends in flight per worker process (delivery.services.inflight): bounded in total and per
provider, sessions reused, a slow provider holding only its own slots, every guarantee kept."""

from __future__ import annotations

import os
import threading
import time

import pytest

from comms.devserver.embedded import free_port
from comms.enums import Status
from delivery import health, routing
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.services import SendSpec, drain_all, housekeeping_run, message_bulk_enqueue, message_enqueue
from delivery.services.engine import claim_batch, deliver_batch

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"


def _bulk(tenant, n: int, prefix: str = "u", **spec) -> None:
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Hi", body="Hello", priority=2, **spec),
                         recipients=[{"to": f"{prefix}{i}@example.com"} for i in range(n)])


def test_a_batch_is_sent_many_at_once_on_reused_sessions(tenant, smtp_sink, settings):
    settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY = 32, 8
    smtp_sink.latency_ms = 100
    _bulk(tenant, 40)
    stats = drain_all()
    assert stats.sent == 40
    # Never more than the provider's slots at once, and more than one (the serial engine has one).
    assert 1 < smtp_sink.max_in_data <= 8
    # Sessions come back to the pool: at most one per slot, not one per message.
    assert smtp_sink.sessions <= 8
    delivered = smtp_sink.by_comms_id()
    assert len(delivered) == 40 and all(len(copies) == 1 for copies in delivered.values())


def test_one_slot_is_the_serial_engine(tenant, smtp_sink, settings):
    settings.COMMS_SEND_CONCURRENCY = 1
    smtp_sink.latency_ms = 20
    _bulk(tenant, 10)
    assert drain_all().sent == 10
    assert smtp_sink.max_in_data == 1


def test_a_slow_provider_holds_only_its_own_slots(tenant, smtp_sink, twilio, settings):
    """SMS answers in 2 s; the emails of the same batch all go out before the first SMS answer."""
    settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY = 16, 4
    twilio.latency_ms = 2000
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="sms", body="code 1", priority=2),
                         recipients=[{"to": f"+1415555{i:04d}"} for i in range(6)])
    _bulk(tenant, 30)
    batch = claim_batch(max_priority=2, limit=100, owner="w1")
    assert {m.channel for m in batch[:6]} == {"sms"}  # the slow messages come first in the batch
    started = time.monotonic()
    stats = deliver_batch(batch, owner="w1")
    assert stats.sent == 36
    emails = Message.objects.filter(channel="email")
    sms = Message.objects.filter(channel="sms")
    last_email = max(emails.values_list("sent_at", flat=True))
    first_sms = min(sms.values_list("sent_at", flat=True))
    assert last_email < first_sms
    assert (first_sms - last_email).total_seconds() > 1.0  # well before, not just before
    assert time.monotonic() - started >= 4.0  # slow start: one SMS, then the other five side by side


def test_the_breaker_opens_after_its_failures_not_after_a_window_of_them(tenant, smtp_sink, settings):
    """A provider that is down is sent one message at a time (slow start), so its circuit opens after
    COMMS_BREAKER_FAILURES failures and the rest fail over; nothing reaches the primary twice."""
    settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY = 32, 16
    settings.COMMS_BREAKER_FAILURES = 3
    ChannelProvider.objects.create(channel="email", name="primary", provider_class=SMTP, is_primary=True,
                                   options={"port": free_port(), "timeout": 2})
    ChannelProvider.objects.create(channel="email", name="secondary", provider_class=SMTP, order=2,
                                   options={"port": int(os.environ["EMAIL_PORT"])})
    _bulk(tenant, 30)
    stats = drain_all()
    assert stats.sent == 30
    assert health.snapshot("primary")["failed_1h"] == 3
    assert set(Message.objects.values_list("provider", flat=True)) == {"secondary"}
    assert len(smtp_sink.by_comms_id()) == 30


def test_no_failover_after_maybe_accepted_under_concurrency(tenant, smtp_sink, settings):
    """The relay holds the DATA reply past the client's timeout: the message may have been taken, so it
    is retried on the same provider later, never sent through the secondary."""
    settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY = 16, 8
    ChannelProvider.objects.create(channel="email", name="primary", provider_class=SMTP, is_primary=True,
                                   options={"port": int(os.environ["EMAIL_PORT"]), "timeout": 0.5})
    ChannelProvider.objects.create(channel="email", name="secondary", provider_class=SMTP, order=2,
                                   options={"port": free_port(), "timeout": 1})
    settings.COMMS_BREAKER_FAILURES = 100  # this test is about failover, not the breaker
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="warm@example.com", subject="s", body="b"))
    assert drain_all().sent == 1  # the primary has answered well: it gets all its slots
    smtp_sink.data_delay = 1.0
    _bulk(tenant, 6)
    stats = drain_all()
    assert stats.retried == 6 and stats.sent == 0
    assert smtp_sink.max_in_data > 1  # they were in flight together
    assert set(Message.objects.exclude(recipient_address="warm@example.com").values_list("status", flat=True)) == {
        Status.QUEUED}
    assert not DeliveryLog.objects.filter(provider="secondary").exists()


def test_a_provider_rate_limit_defers_instead_of_bursting(tenant, smtp_sink, settings):
    settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY = 32, 16
    ChannelProvider.objects.create(channel="email", name="limited", provider_class=SMTP, is_primary=True,
                                   options={"port": int(os.environ["EMAIL_PORT"])}, rate_limit=2)
    smtp_sink.latency_ms = 50
    _bulk(tenant, 12)
    stats = drain_all()
    # GCRA with a burst of 1 at 2/s: the first message goes, the others, asked for within a few ms, wait.
    assert stats.sent + stats.deferred == 12
    assert 1 <= stats.sent <= 2 and len(smtp_sink.messages) == stats.sent
    assert Message.objects.filter(status=Status.QUEUED, attempt_count=0).count() == stats.deferred


def test_preferences_are_screened_at_send_time_under_concurrency(tenant, smtp_sink, settings):
    from preferences.services import suppression_add

    settings.COMMS_SEND_CONCURRENCY = 16
    _bulk(tenant, 10)
    suppression_add(tenant=tenant, channel="email", address="u3@example.com", reason="hard_bounce", source="test")
    stats = drain_all()
    assert (stats.sent, stats.blocked) == (9, 1)
    assert Message.objects.get(recipient_address="u3@example.com").status == Status.BLOCKED
    assert "u3@example.com" not in {m["To"] for m in smtp_sink.messages}


@pytest.mark.django_db(transaction=True)
def test_leases_are_extended_while_sends_are_in_flight(tenant, smtp_sink, settings):
    """Sends outlast the lease (2 s); housekeeping reaps expired leases every 0.2 s meanwhile. The
    engine extends the lease on what is still waiting, so nothing is reaped and nothing is lost."""
    settings.COMMS_LEASE_SECONDS = 2
    settings.COMMS_SEND_CONCURRENCY, settings.COMMS_PROVIDER_CONCURRENCY = 8, 2
    smtp_sink.latency_ms = 700
    _bulk(tenant, 8)
    stop, reaped = threading.Event(), []

    def reaper():
        from django.db import connection

        while not stop.is_set():
            reaped.append(housekeeping_run().reaped)
            time.sleep(0.2)
        connection.close()

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        stats = drain_all()  # 8 messages, 2 at a time, 0.7 s each: about 3 s, past the lease
    finally:
        stop.set()
        thread.join()
    assert sum(reaped) == 0 and len(reaped) > 5
    assert (stats.sent, stats.lost_lease) == (8, 0)
    assert not DeliveryLog.objects.filter(event="lease_expired").exists()


def test_provider_database_work_stays_on_the_engine_thread(tenant, fcm, settings):
    """FCM reads devices and prunes dead ones: prepare() and settle() run on the engine's thread, so
    they see this test's uncommitted transaction; a sending thread would not (its own connection)."""
    from comms.models import Device
    from comms.services import recipient_upsert

    settings.COMMS_SEND_CONCURRENCY = 16
    routing.clear_cache()
    recipient, _ = recipient_upsert(tenant=tenant, external_id="ada", data={})
    Device.objects.create(tenant=tenant, recipient=recipient, token="tok-live", platform="android")
    Device.objects.create(tenant=tenant, recipient=recipient, token="tok-dead", platform="ios")
    fcm.fail("tok-dead", "unregistered")
    message_enqueue(tenant=tenant, spec=SendSpec(channel="push", recipient_id="ada", subject="Hi", body="there"))
    assert drain_all().sent == 1
    assert Device.objects.get(token="tok-dead").disabled_at is not None
    assert Device.objects.get(token="tok-live").disabled_at is None

"""Failover, circuit breaker and rate limits around the providers."""

from __future__ import annotations

import os
import time

import pytest
from django.utils import timezone

from comms.devserver.embedded import free_port
from comms.enums import Status
from delivery import health, ratelimit
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.services import SendSpec, drain_all, message_enqueue

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"


def _send(tenant, to="ada@example.com"):
    message, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=to, subject="s", body="b"))
    return message


def _providers(dead_port: int, *, primary_rate=None):
    ChannelProvider.objects.create(channel="email", name="primary", provider_class=SMTP, is_primary=True,
                                   options={"port": dead_port, "timeout": 2}, rate_limit=primary_rate)
    ChannelProvider.objects.create(channel="email", name="secondary", provider_class=SMTP, order=2,
                                   options={"port": int(os.environ["EMAIL_PORT"])})


def test_failover_when_the_primary_cannot_be_reached(tenant, smtp_sink):
    _providers(free_port())
    message = _send(tenant)
    assert drain_all().sent == 1
    message.refresh_from_db()
    assert (message.status, message.provider) == (Status.SENT, "secondary")
    assert len(smtp_sink.messages) == 1
    assert health.snapshot("primary")["consecutive_failures"] == 1
    assert health.snapshot("secondary")["success_rate_1h"] == 100.0


def test_no_failover_when_the_primary_may_have_taken_it(tenant, smtp_sink, settings):
    """A session that dies after DATA was sent is ambiguous: retry on the same provider, later."""
    from delivery.providers.base import SendResult
    from delivery.services.engine import _provider_fault

    ambiguous = SendResult.transient("network", "timed out", maybe_accepted=True)
    assert _provider_fault(ambiguous)
    _providers(int(os.environ["EMAIL_PORT"]))
    smtp_sink.data_delay = 3  # longer than the primary's 2 s timeout: the relay has the data, we never hear back
    message = _send(tenant)
    drain_all()
    smtp_sink.data_delay = 0
    message.refresh_from_db()
    assert message.status == Status.QUEUED and message.provider == "primary"
    assert message.failure_code in ("network", "disconnected")  # both mean: may have been accepted
    assert [log.provider for log in DeliveryLog.objects.filter(message=message)] == ["primary"]


def test_circuit_opens_probes_and_closes(tenant, smtp_sink, settings):
    settings.COMMS_BREAKER_FAILURES = 3
    settings.COMMS_BREAKER_COOLDOWN = 1.0
    _providers(free_port())
    for i in range(3):
        _send(tenant, to=f"u{i}@example.com")
    drain_all()
    assert health.snapshot("primary")["state"] == "open"
    assert not health.allow("primary")
    before = health.snapshot("primary")["consecutive_failures"]
    _send(tenant, to="while-open@example.com")
    drain_all()  # goes straight to the secondary: the open primary is not even tried
    assert health.snapshot("primary")["consecutive_failures"] == before
    assert Message.objects.get(recipient_address="while-open@example.com").provider == "secondary"
    time.sleep(1.1)
    assert health.allow("primary") is True   # half-open: one probe...
    assert health.allow("primary") is False  # ...at a time
    health.record("primary", healthy=True, latency_ms=5)
    assert health.snapshot("primary")["state"] == "closed" and health.allow("primary")


def test_gcra_never_admits_more_than_the_rate_in_any_second(tenant):
    limit = ratelimit.Limit(key="test:ten", per_second=10, burst=1)
    granted = []
    t = 1_000_000.0
    while t < 1_000_003.0:
        if ratelimit.acquire([limit], now=t).allowed:
            granted.append(t)
        t += 0.001
    assert 29 <= len(granted) <= 31
    for start in granted:
        assert sum(1 for g in granted if start <= g < start + 1.0) <= 10


def test_a_limit_that_waits_defers_without_spending_an_attempt(tenant, smtp_sink):
    _providers(int(os.environ["EMAIL_PORT"]), primary_rate=2)
    messages = [_send(tenant, to=f"r{i}@example.com") for i in range(5)]
    stats = drain_all()
    assert stats.sent + stats.deferred == 5 and stats.sent >= 1 and stats.deferred >= 3
    deferred = Message.objects.filter(id__in=[m.id for m in messages], status=Status.QUEUED)
    for message in deferred:
        assert message.attempt_count == 0
        assert message.next_attempt_at > timezone.now()
        assert DeliveryLog.objects.filter(message=message, event="deferred").exists()
    deadline = time.monotonic() + 10
    while Message.objects.filter(status=Status.QUEUED).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
        drain_all()
    assert Message.objects.filter(status=Status.SENT).count() == 5
    assert len(smtp_sink.messages) == 5


def test_recipient_domain_limits(tenant, settings):
    settings.COMMS_DOMAIN_RATE_LIMITS = {"gmail.com": (3, 3600)}
    limits = ratelimit.limits_for(provider_name="smtp", provider_rate=None, channel="email", address="a@Gmail.com")
    assert [lim.key for lim in limits] == ["domain:gmail.com"]
    results = [ratelimit.acquire(limits, now=5_000.0 + i).allowed for i in range(5)]
    assert results[:1] == [True] and results.count(True) <= 2  # 3/h: burst of one, then 20 min apart
    assert ratelimit.limits_for(provider_name="smtp", provider_rate=None, channel="email", address="a@example.org") == []


def test_provider_health_api(api, tenant, smtp_sink):
    _providers(free_port())
    _send(tenant)
    drain_all()
    rows = {r["provider"]: r for r in api.get("/api/v1/providers/health").json()["results"]}
    assert rows["primary"]["consecutive_failures"] == 1 and rows["primary"]["success_rate_1h"] == 0.0
    assert rows["secondary"]["state"] == "closed" and rows["secondary"]["success_rate_1h"] == 100.0
    assert rows["secondary"]["channel"] == "email"

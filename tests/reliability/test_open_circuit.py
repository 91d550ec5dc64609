"""An open circuit defers messages until the cooldown ends; it does not spend their retry budget."""

from __future__ import annotations

import pytest
from django.conf import settings

from delivery import health
from delivery.models import DeliveryLog
from delivery.services import SendSpec, drain_all, message_enqueue

pytestmark = pytest.mark.django_db


def test_open_circuit_defers_without_spending_an_attempt(tenant, smtp_sink):
    for _ in range(settings.COMMS_BREAKER_FAILURES + 1):
        health.record("smtp", healthy=False, latency_ms=5, code="network")
    health.flush()
    assert not health.allow("smtp")
    message, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="a@example.com", subject="s",
                                                              body="b"))
    stats = drain_all()
    message.refresh_from_db()
    assert (stats.deferred, stats.retried, stats.dead) == (1, 0, 0)
    assert (message.status, message.attempt_count) == ("queued", 0)
    assert (message.next_attempt_at - message.updated_at).total_seconds() >= settings.COMMS_BREAKER_COOLDOWN
    assert DeliveryLog.objects.filter(message=message, event="deferred").exists()
    assert smtp_sink.messages == []

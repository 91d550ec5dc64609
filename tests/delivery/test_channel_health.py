"""ChannelHealth: the Redis health counters persisted per provider by beat's housekeeping."""

from __future__ import annotations

import os

import pytest

from comms.devserver.embedded import free_port
from delivery import health
from delivery.models import ChannelHealth, ChannelProvider
from delivery.services import SendSpec, drain_all, message_enqueue
from delivery.services.channel_health import channel_health_refresh
from delivery.services.housekeeping import housekeeping_run

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"


def _send(tenant, to):
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=to, subject="s", body="b"))


def test_housekeeping_persists_each_providers_health(tenant, smtp_sink, settings):
    settings.COMMS_BREAKER_FAILURES = 2
    ChannelProvider.objects.create(channel="email", name="primary", provider_class=SMTP, is_primary=True,
                                   options={"port": free_port(), "timeout": 2}, rate_limit=100_000)
    ChannelProvider.objects.create(channel="email", name="secondary", provider_class=SMTP, order=2,
                                   options={"port": int(os.environ["EMAIL_PORT"])})
    for i in range(3):
        _send(tenant, f"u{i}@example.com")
    drain_all()
    stats = housekeeping_run()
    assert stats.health_rows == 2
    primary, secondary = ChannelHealth.objects.get(provider="primary"), ChannelHealth.objects.get(provider="secondary")
    assert (primary.channel, primary.state, primary.is_healthy) == ("email", "open", False)
    assert (primary.failed_1h, primary.ok_1h, primary.success_rate_1h) == (2, 0, 0.0)
    assert primary.last_failure_code == "connect" and primary.last_failure_at is not None
    assert primary.opened_at is not None and primary.max_rate_per_sec == 100_000
    assert (secondary.ok_1h, secondary.ok_24h, secondary.success_rate_24h, secondary.is_healthy) == (3, 3, 100.0, True)
    assert secondary.latency_avg_ms_1h is not None and secondary.latency_p95_ms_1h is not None
    assert secondary.last_failure_code == "" and secondary.last_failure_at is None
    # Within the interval other beat ticks leave the table alone; the next one after it refreshes.
    health.record("secondary", healthy=True, latency_ms=1)
    assert housekeeping_run().health_rows == 0
    assert channel_health_refresh(force=True) == 2
    assert ChannelHealth.objects.get(provider="secondary").ok_1h == 4


def test_p95_comes_from_the_latency_histogram(tenant):
    for _ in range(90):
        health.record("esp", healthy=True, latency_ms=20)
    for _ in range(10):
        health.record("esp", healthy=False, latency_ms=800, code="503")
    snap = health.snapshot("esp")
    assert snap["p95_latency_ms_1h"] == 1000.0  # the 95th send finished in the 500-1000 ms bucket
    assert snap["avg_latency_ms_1h"] == 98.0 and snap["success_rate_1h"] == 90.0
    assert snap["last_failure_code"] == "503"
    channel_health_refresh(force=True)
    row = ChannelHealth.objects.get(provider="esp")
    assert (row.channel, row.latency_p95_ms_24h, row.failed_24h) == ("", 1000.0, 10)

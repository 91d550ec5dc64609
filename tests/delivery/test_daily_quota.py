"""A provider's daily quota (ChannelProvider.daily_limit) is a hard cap: spent, the next provider sends."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from comms.enums import Status
from delivery import ratelimit
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.services import SendSpec, drain_all, message_enqueue

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"


def _send(tenant, i):
    return message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"q{i}@example.com", subject="s",
                                                        body="b"))[0]


def test_a_spent_quota_moves_sends_to_the_next_provider_then_waits(tenant, smtp_sink):
    port = int(os.environ["EMAIL_PORT"])
    ChannelProvider.objects.create(channel="email", name="capped", provider_class=SMTP, is_primary=True,
                                   daily_limit=2, options={"port": port})
    backup = ChannelProvider.objects.create(channel="email", name="backup", provider_class=SMTP, order=2,
                                            daily_limit=1, options={"port": port})
    messages = [_send(tenant, i) for i in range(4)]
    stats = drain_all()
    assert (stats.sent, stats.deferred) == (3, 1)
    used = [Message.objects.get(id=m.id).provider for m in messages]
    assert used[:3] == ["capped", "capped", "backup"]
    waiting = Message.objects.get(id=messages[3].id)
    assert waiting.status == Status.QUEUED and waiting.attempt_count == 0
    assert (waiting.next_attempt_at - timezone.now()).total_seconds() > 0
    assert DeliveryLog.objects.get(message=waiting, event="deferred").detail.startswith("daily quota")
    assert len(smtp_sink.messages) == 3
    assert backup.daily_limit == 1


def test_the_quota_renews_with_the_utc_day(tenant):
    day = 20_000 * 86400.0
    assert ratelimit.daily_take("p", 1, now=day + 10) == 0
    assert ratelimit.daily_take("p", 1, now=day + 20) == pytest.approx(86400 - 20)
    assert ratelimit.daily_take("p", 1, now=day + 86400 + 1) == 0
    assert ratelimit.daily_take("p", None) == 0

"""The outcome aggregate (delivery.latency): histogram buckets and percentiles, the per-flush upsert
through real sends (SMTP sink: sent, 550 refused, 451 retried), and pruning by the stats rollup."""

from __future__ import annotations

import math
import os
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from admin_console import stats
from delivery.latency import buckets
from delivery.latency.models import OutcomeDay
from delivery.models import ChannelProvider, Message
from delivery.services import SendSpec, drain_all, message_enqueue

SMTP = "delivery.providers.smtp.SmtpProvider"


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def test_bucket_bounds_are_ten_per_decade():
    assert [buckets.bucket_of(ms) for ms in (-5, 0, 1.0, 1.0001, 1.2589, 1.26, 10, 10.001, 1e8, 1e9)] == \
        [0, 0, 0, 1, 1, 2, 10, 11, 80, 81]
    for k in range(1, buckets.BUCKETS - 1):
        lo, hi = buckets.bounds(k)
        assert hi / lo == pytest.approx(buckets.RATIO) and buckets.bucket_of(hi) == k
    assert buckets.percentile([0] * buckets.BUCKETS, 0.5) is None


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_from_the_histogram_stay_within_one_bucket_of_the_true_value(seed):
    rng = random.Random(seed)
    # Log-normal waits from sub-millisecond to minutes, the shape queue waits have.
    values = [rng.lognormvariate(rng.uniform(0, 8), rng.uniform(0.3, 2.5)) for _ in range(rng.randrange(50, 5000))]
    counts = buckets.histogram(values)
    for q in (0.5, 0.9, 0.99):
        true, shown = _nearest_rank(values, q), buckets.percentile(counts, q)
        lo, hi = buckets.bounds(buckets.bucket_of(true))
        assert lo <= shown <= hi, (q, shown, true)
        assert abs(shown - true) <= max(1.0, true * (buckets.RATIO - 1))


@pytest.fixture
def smtp(tenant, smtp_sink):
    ChannelProvider.objects.create(channel="email", name="relay", provider_class=SMTP, is_primary=True,
                                   options={"port": int(os.environ["EMAIL_PORT"])})
    return smtp_sink


def _email(tenant, to: str, priority: int) -> Message:
    return message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=to, subject="s", body="b",
                                                        priority=priority))[0]


@pytest.mark.django_db
def test_outcomes_are_counted_per_priority_and_code_and_merge_across_flushes(tenant, smtp):
    smtp.script("gone@example.com", "550 5.1.1 no such user")
    smtp.script("busy@example.com", "451 4.7.1 try again later")
    for i in range(3):
        _email(tenant, f"p1-{i}@example.com", 1)
    _email(tenant, "gone@example.com", 3)
    _email(tenant, "busy@example.com", 3)
    drain_all()
    assert Message.objects.get(recipient_address="busy@example.com").status == "queued"  # retried later
    _email(tenant, "p1-late@example.com", 1)
    drain_all()  # a second flush adds to the same row
    rows = {(r.priority, r.outcome, r.code): r for r in OutcomeDay.objects.all()}
    assert {k: r.n for k, r in rows.items()} == {(1, "sent", ""): 4, (3, "failed", "550"): 1,
                                                  (3, "retrying", "451"): 1}
    sent = rows[(1, "sent", "")]
    assert (sent.tenant_id, sent.channel, sent.provider) == (tenant.id, "email", "relay")
    assert sent.day in (timezone.now().date(), (timezone.now() - timedelta(hours=1)).date())
    assert len(sent.wait_hist) == buckets.BUCKETS and sum(sent.wait_hist) == 4
    waits = [(m.sent_at - m.created_at).total_seconds() * 1000 for m in Message.objects.filter(status="sent")]
    assert sorted(k for k, c in enumerate(sent.wait_hist) for _ in range(c)) == sorted(map(buckets.bucket_of, waits))
    # Every outcome the SMTP relay decided carries its call time; only sent rows have a queue wait.
    assert [sum(r.call_hist) for r in rows.values()] == [r.n for r in rows.values()]
    assert rows[(3, "failed", "550")].wait_hist is None


@pytest.mark.django_db
def test_the_stats_rollup_drops_days_past_their_retention(tenant, settings):
    settings.COMMS_OUTCOME_STATS_RETENTION_DAYS = 30
    today = timezone.now().date()
    for day in (today - timedelta(days=31), today - timedelta(days=29)):
        OutcomeDay.objects.create(day=day, tenant_id=tenant.id, channel="email", provider="relay", priority=2,
                                   outcome="sent", n=1)
    assert stats.rollup()
    assert [d.day for d in OutcomeDay.objects.all()] == [today - timedelta(days=29)]

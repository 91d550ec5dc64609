"""Warm-up ladders through the real engine: today's cap per mailbox provider, the rest deferred to
the next UTC day (never failed), P0 and engaged recipients first, the ladder advancing daily."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from uuid_utils.compat import uuid7

from comms import errors
from comms.enums import Status
from delivery.deliverability import pools, warmup
from delivery.models import DeliveryLog, Message, WarmupCounter, WarmupLadder
from delivery.services import SendSpec, drain_all, message_enqueue
from delivery.services.housekeeping import waiting_promote
from tracking.models import MessageEvent

pytestmark = pytest.mark.django_db
DAY1 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
DAY2 = datetime(2026, 3, 3, 0, 0, 1, tzinfo=dt_timezone.utc)


@pytest.fixture
def ladder(tenant):
    """A marketing pool on the default route; Gmail's cap is 5 on day 1 and 10 on day 2."""
    pools.pool_create(name="marketing", categories=["marketing"])
    return warmup.ladder_create(pool="marketing", schedule=[1000], group_schedules={"gmail": [5, 10]},
                                started_on=DAY1.date())


def _send(tenant, to, *, priority=3, category="marketing", now=DAY1):
    message, _ = message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=to, subject="s", body="b",
                                                              priority=priority, category=category), now=now)
    return message


def test_over_the_cap_waits_for_tomorrow_and_goes_when_the_day_advances(tenant, ladder, smtp_sink):
    sent = [_send(tenant, f"u{i}@gmail.com") for i in range(8)]
    stats = drain_all(clock=lambda: DAY1)
    assert (stats.sent, stats.deferred) == (5, 3)
    rows = Message.objects.filter(id__in=[m.id for m in sent])
    assert sorted(m.status for m in rows) == [Status.DEFERRED] * 3 + [Status.SENT] * 5
    deferred = [m for m in rows if m.status == Status.DEFERRED]
    midnight = datetime(2026, 3, 3, tzinfo=dt_timezone.utc)
    assert {(m.failure_code, m.next_attempt_at, m.attempt_count) for m in deferred} == {
        ("COMMS_WARMUP_CAP", midnight, 0)}
    logs = DeliveryLog.objects.filter(message__in=deferred, event="deferred", status_code="COMMS_WARMUP_CAP")
    assert logs.count() == 3
    # Another drain the same day sends nothing more (the deferred rows are not due; new mail is capped).
    _send(tenant, "late@gmail.com")
    assert drain_all(clock=lambda: DAY1).sent == 0
    assert len(smtp_sink.messages) == 5
    counter = WarmupCounter.objects.get(ladder=ladder, group="gmail", day=DAY1.date())
    assert (counter.sent, counter.deferred) == (5, 4)
    # The next UTC day: promoted, day 2's cap of 10 takes all four.
    assert waiting_promote(now=DAY2) == 4
    assert drain_all(clock=lambda: DAY2).sent == 4
    assert Message.objects.filter(status=Status.SENT).count() == 9
    assert WarmupCounter.objects.get(ladder=ladder, group="gmail", day=DAY2.date()).sent == 4


def test_each_mailbox_provider_has_its_own_cap(tenant, ladder, smtp_sink):
    for i in range(7):
        _send(tenant, f"g{i}@googlemail.com")
        _send(tenant, f"y{i}@yahoo.co.uk")
    stats = drain_all(clock=lambda: DAY1)
    assert (stats.sent, stats.deferred) == (12, 2)  # 5 of Gmail's 7, all 7 of Yahoo's (cap 1000)
    assert {m.recipient_address.split("@")[1] for m in Message.objects.filter(status=Status.DEFERRED)} == {
        "googlemail.com"}


def test_p0_is_not_deferred_before_lower_priorities(tenant, ladder, smtp_sink):
    low = [_send(tenant, f"low{i}@gmail.com", priority=3) for i in range(6)]
    urgent = [_send(tenant, f"urgent{i}@gmail.com", priority=0) for i in range(2)]
    assert drain_all(clock=lambda: DAY1).sent == 5
    assert set(Message.objects.filter(id__in=[m.id for m in urgent]).values_list("status", flat=True)) == {Status.SENT}
    assert Message.objects.filter(id__in=[m.id for m in low], status=Status.DEFERRED).count() == 3


def test_engaged_recipients_get_the_slots_first(tenant, ladder, smtp_sink):
    for address in ("fan1@gmail.com", "fan2@gmail.com"):  # opened/clicked recently
        MessageEvent.objects.create(tenant=tenant, message_id=uuid7(), event_type="clicked", provider="comms",
                                    recipient_address=address, timestamp=DAY1 - timedelta(days=3))
    MessageEvent.objects.create(tenant=tenant, message_id=uuid7(), event_type="opened", provider="comms",
                                recipient_address="old@gmail.com", timestamp=DAY1 - timedelta(days=90))
    for i in range(6):
        _send(tenant, f"cold{i}@gmail.com")
    _send(tenant, "old@gmail.com")
    _send(tenant, "fan1@gmail.com")
    _send(tenant, "fan2@gmail.com")
    assert drain_all(clock=lambda: DAY1).sent == 5
    # The two engaged recipients first, then the rest in queue order; an open 90 days ago is stale.
    sent = set(Message.objects.filter(status=Status.SENT).values_list("recipient_address", flat=True))
    assert sent == {"fan1@gmail.com", "fan2@gmail.com", "cold0@gmail.com", "cold1@gmail.com", "cold2@gmail.com"}


def test_near_the_cap_the_reserve_is_kept_for_p0_and_engaged(tenant, smtp_sink, settings):
    settings.COMMS_WARMUP_RESERVE = 0.2
    pools.pool_create(name="marketing", categories=["marketing"])
    warmup.ladder_create(pool="marketing", schedule=[10], started_on=DAY1.date())
    for i in range(10):
        _send(tenant, f"cold{i}@gmail.com")
    assert drain_all(clock=lambda: DAY1).sent == 8  # 2 of 10 kept back for P0/P1 and engaged recipients
    _send(tenant, "urgent@gmail.com", priority=1)
    _send(tenant, "urgent2@gmail.com", priority=0)
    _send(tenant, "urgent3@gmail.com", priority=0)
    assert drain_all(clock=lambda: DAY1).sent == 2
    assert Message.objects.filter(status=Status.DEFERRED, priority__lte=1).count() == 1


def test_a_paused_ladder_keeps_its_day_and_a_held_one_sends_nothing(tenant, ladder, smtp_sink):
    assert warmup.cap_for(ladder, "gmail", DAY1.date()) == 5
    ladder = warmup.ladder_set_state(ladder=ladder, state="paused", today=DAY1.date(), actor="ops")
    assert warmup.cap_for(ladder, "gmail", DAY1.date() + timedelta(days=5)) == 5  # frozen on day 1
    ladder = warmup.ladder_set_state(ladder=ladder, state="active", today=DAY1.date() + timedelta(days=5))
    assert ladder.started_on == DAY1.date() + timedelta(days=5)
    assert warmup.cap_for(ladder, "gmail", DAY1.date() + timedelta(days=6)) == 10  # picks up on day 2
    assert warmup.cap_for(ladder, "gmail", DAY1.date() + timedelta(days=7)) is None  # complete: no cap
    ladder = warmup.ladder_set_state(ladder=ladder, state="held", today=DAY1.date())
    _send(tenant, "a@gmail.com")
    _send(tenant, "a@example.net")
    stats = drain_all(clock=lambda: DAY1)
    assert (stats.sent, stats.deferred) == (0, 2)
    assert "held" in Message.objects.filter(status=Status.DEFERRED).first().failure_reason


def test_mail_outside_the_pool_is_not_counted(tenant, ladder, smtp_sink):
    for i in range(7):
        _send(tenant, f"t{i}@gmail.com", category="transactional")
    assert drain_all(clock=lambda: DAY1).sent == 7
    assert not WarmupCounter.objects.exists()


def test_the_default_ladder_is_seed_001s_four_week_ramp(tenant):
    pools.pool_create(name="marketing")
    ladder = warmup.ladder_create(pool="marketing", started_on=DAY1.date())
    assert len(ladder.schedule) == 28 and ladder.schedule[0] == 50 and ladder.schedule[-1] == 100_000
    assert ladder.schedule == sorted(ladder.schedule)


@pytest.mark.parametrize("kwargs, error", [
    ({"pool": "nope"}, errors.PoolUnknown),
    ({"pool": "marketing", "schedule": [5, -1]}, errors.WarmupInvalid),
    ({"pool": "marketing", "schedule": []}, errors.WarmupInvalid),
    ({"pool": "marketing", "schedule": [5, "10"]}, errors.WarmupInvalid),
    ({"pool": "marketing", "schedule": [1.5]}, errors.WarmupInvalid),
    ({"pool": "marketing", "group_schedules": {"hotmail": [1]}}, errors.WarmupInvalid),
    ({"pool": "marketing", "group_schedules": {"gmail": [-5]}}, errors.WarmupInvalid),
    ({"pool": "marketing", "from_domain": "not a domain"}, errors.WarmupInvalid),
])
def test_bad_ladders_are_typed_errors(tenant, kwargs, error):
    pools.pool_create(name="marketing")
    with pytest.raises(error):
        warmup.ladder_create(**kwargs)
    assert not WarmupLadder.objects.exists()


def test_a_second_ladder_for_the_same_pool_and_domain_is_refused(tenant):
    pools.pool_create(name="marketing")
    warmup.ladder_create(pool="marketing")
    with pytest.raises(errors.WarmupInvalid):
        warmup.ladder_create(pool="marketing")
    with pytest.raises(errors.WarmupInvalid):
        warmup.ladder_set_state(ladder=WarmupLadder.objects.get(), state="sideways")


@pytest.mark.parametrize("address, group", [
    ("a@gmail.com", "gmail"), ("a@GoogleMail.com", "gmail"), ("a@yahoo.com", "yahoo"), ("a@aol.com", "yahoo"),
    ("a@yahoo.co.jp", "yahoo"), ("a@outlook.com", "microsoft"), ("a@hotmail.fr", "microsoft"),
    ("a@live.com", "microsoft"), ("a@example.com", "other"), ("a@gmail.com.evil.example", "other"),
])
def test_mailbox_groups(address, group):
    assert warmup.mailbox_group(address) == group


def test_a_domain_ladder_caps_only_mail_from_that_domain(tenant, smtp_sink, settings):
    settings.COMMS_WARMUP_RESERVE = 0
    pools.pool_create(name="marketing", categories=["marketing"])
    warmup.ladder_create(pool="marketing", from_domain="news.shop.example", schedule=[1], started_on=DAY1.date())
    for i, sender in enumerate(["a@news.shop.example", "b@news.shop.example", "c@shop.example"]):
        message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"u{i}@gmail.com", subject="s", body="b",
                                                     priority=3, category="marketing",
                                                     metadata={"from_email": sender}), now=DAY1)
    stats = drain_all(clock=lambda: DAY1)
    assert (stats.sent, stats.deferred) == (2, 1)  # one from the new domain, and the other domain's mail

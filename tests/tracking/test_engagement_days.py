"""The engagement aggregate (tracking_engagementday): written by the event apply path with one upsert
per applied set (a signed SendGrid batch, our open pixel), uniques where FirstEvent is won, pruned by
the stats rollup, and the report's figures for a message first opened on an earlier day."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from admin_console import analytics, stats
from tests.webhooks.conftest import sent_message  # noqa: F401
from tests.webhooks.signers import SendGridSigner
from tracking.models import EngagementDay, MessageEvent
from tracking.normalised import NormalisedEvent
from tracking.services import Item, events_apply
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db


def _rows() -> dict[tuple, tuple[int, int]]:
    return {(r.provider, r.device, r.hour, r.weekday, r.event_type): (r.total, r.uniques)
            for r in EngagementDay.objects.all()}


def _post(client, sg, messages, event: str, ts: int, prefix: str) -> None:
    """One signed SendGrid POST carrying `event` for every message (one stored webhook, one applied set)."""
    body = [json.loads(sg.events(ref=m.provider_ref, address=m.recipient_address, event=event, ts=ts,
                                 event_id=f"{prefix}-{i}"))[0] for i, m in enumerate(messages)]
    assert sg.sign(json.dumps(body)).send(client).status_code == 200


def test_a_webhook_batch_is_one_upsert_uniques_once_redelivery_nothing(
        client, settings, sent_message):  # noqa: F811
    sg = SendGridSigner(settings)
    messages = [sent_message(address=f"e{i}@example.com") for i in range(6)]
    ts = (int(time.time()) - 3600) // 3600 * 3600 + 60  # an hour's start + 1 min: ts … ts + 3 share an hour
    at = datetime.fromtimestamp(ts, dt_timezone.utc)
    _post(client, sg, messages, "open", ts, "a")
    _post(client, sg, messages, "open", ts + 1, "b")  # each message opened again
    _post(client, sg, messages[:2], "click", ts + 2, "c")
    with CaptureQueriesContext(connection) as queries:
        webhooks_process_pending()
    writes = [q["sql"] for q in queries if "tracking_engagementday" in q["sql"]]
    assert len(writes) == 1 and writes[0].lstrip().startswith("INSERT")  # 14 events, one statement
    key = ("sendgrid", "mobile", at.hour, at.isoweekday())
    assert _rows() == {(*key, "opened"): (12, 6), (*key, "clicked"): (2, 2)}
    # A redelivered batch (same event ids) records nothing and counts nothing.
    _post(client, sg, messages, "open", ts + 1, "b")
    webhooks_process_pending()
    assert _rows()[(*key, "opened")] == (12, 6)
    # A later open of an already-opened message adds to the total only.
    _post(client, sg, messages[:1], "open", ts + 3, "d")
    webhooks_process_pending()
    assert _rows()[(*key, "opened")] == (13, 6)
    assert MessageEvent.objects.filter(event_type="opened").count() == 13


def _open(message, at: datetime, now: datetime, ua: str = "") -> None:
    event = NormalisedEvent(provider="comms", event_type="opened", message_id=str(message.id), timestamp=at,
                            user_agent=ua)
    with transaction.atomic():
        events_apply(items=[Item(event, None, message)], now=now)


def test_a_message_first_opened_yesterday_is_a_unique_open_of_yesterday_only(
        tenant, sent_message):  # noqa: F811
    message = sent_message(address="twice@example.com")
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    _open(message, yesterday, yesterday)
    _open(message, now, now)
    _open(sent_message(address="today@example.com"), now, now)
    period = analytics.parse_period(None, None)
    report = analytics.engagement(period=period, group_by=("day",), tenant_id=tenant.id)
    days = {r["day"]: (r["opens"], r["unique_opens"]) for r in report["rows"]}
    assert days == {yesterday.date().isoformat(): (1, 1), now.date().isoformat(): (2, 1)}
    # The breakdowns' uniques add up to the period's: 2 messages, each unique once.
    hours = {h["hour"]: (h["opens"], h["unique_opens"]) for h in report["by_hour"] if h["opens"]}
    assert hours == {now.hour: (3, 2)}  # exactly 24 h apart: the same UTC hour
    weekdays = {w["weekday"]: (w["opens"], w["unique_opens"]) for w in report["by_weekday"] if w["opens"]}
    assert weekdays == {analytics.WEEKDAYS[yesterday.weekday()]: (1, 1), analytics.WEEKDAYS[now.weekday()]: (2, 1)}
    [device] = report["by_device"]
    assert (device["device"], device["opens"]) == ("unknown", 3)  # no User-Agent: unknown, as before


def test_the_stats_rollup_drops_engagement_days_past_their_retention(tenant, settings):
    settings.COMMS_ENGAGEMENT_STATS_RETENTION_DAYS = 30
    today = timezone.now().date()
    for day in (today - timedelta(days=31), today - timedelta(days=29)):
        EngagementDay.objects.create(day=day, tenant_id=tenant.id, provider="comms", device="desktop", hour=9,
                                     weekday=day.isoweekday(), event_type="opened", total=2, uniques=1)
    assert stats.rollup()
    assert [d.day for d in EngagementDay.objects.all()] == [today - timedelta(days=29)]

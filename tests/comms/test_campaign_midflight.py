"""Pause, resume and cancel while a real worker is sending: no message goes out after cancel returns
except those a worker already held (reported as in flight)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.services import campaign_cancel, campaign_create, campaign_pause, campaign_resume, campaign_schedule
from comms.campaigns.services import campaigns_tick
from comms.models import Recipient
from delivery.models import Message
from tests.comms.router_fixtures import live_template
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _count(**filters) -> int:
    return Message.objects.filter(**filters).count()


def test_pause_resume_cancel_mid_flight(tenant, smtp_sink, celery_worker, settings):
    settings.COMMS_CAMPAIGN_CHUNK = 20
    live_template(tenant, "promo", subject="Hi", body_html="<p>Sale</p>", category="marketing")
    Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"u{i}", email=f"u{i}@example.com")
                                   for i in range(100)])
    campaign = campaign_create(tenant=tenant, data={"name": "Sale", "channels": ["email"], "template": "promo",
                                                    "audience": {"recipients": [f"u{i}" for i in range(100)]}})
    campaign_schedule(tenant=tenant, campaign_id=campaign.id)  # commits: the tick marks it running
    smtp_sink.rcpt_delay = 0.05  # slow enough to act mid-flight
    celery_worker("p3", "campaign", COMMS_P3_BATCH="4")
    campaign_fanout(campaign_id=campaign.id)
    assert _count(status="scheduled") == 40  # 3 of 5 chunks released, 2 held for the pump

    wait_for(lambda: _count(status="sent") >= 5, timeout=240, message="first sends")
    campaign_pause(tenant=tenant, campaign_id=campaign.id)
    wait_for(lambda: _count(status="sending") == 0, timeout=120, message="in-flight rows to finish")
    paused_sent = _count(status="sent")
    campaigns_tick()  # a paused campaign releases nothing
    assert _count(status="queued") == 0 and _count(status="sent") == paused_sent < 100

    campaign_resume(tenant=tenant, campaign_id=campaign.id)
    wait_for(lambda: _count(status="sent") >= paused_sent + 10, timeout=120, message="sending after resume")
    campaigns_tick()
    _, effect = campaign_cancel(tenant=tenant, campaign_id=campaign.id)
    cancelled_at = timezone.now()
    wait_for(lambda: _count(status="sending") == 0, timeout=120, message="in-flight rows to finish")
    sent_after = _count(status="sent", sent_at__gt=cancelled_at)
    assert sent_after <= effect["in_flight"]
    with connection.cursor() as cursor:  # nothing of this campaign is left claimable
        cursor.execute("SELECT count(*) FROM delivery_message WHERE status IN ('queued', 'deferred') "
                       "OR (status = 'scheduled' AND next_attempt_at < '8000-01-01')")
        assert cursor.fetchone()[0] == 0
    total_sent = _count(status="sent")
    assert total_sent < 100
    assert len(smtp_sink.messages) == total_sent


def test_parallel_writers_write_each_recipient_once(tenant, settings):
    """Three writer threads on their own connections: every recipient gets exactly one row, the chunks
    are recorded once each, and only the window's worth of chunks is released."""
    settings.COMMS_CAMPAIGN_CHUNK = 20
    live_template(tenant, "promo", subject="Hi", body_html="<p>Sale</p>", category="marketing")
    Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"u{i}", email=f"u{i}@example.com")
                                   for i in range(250)])
    campaign = campaign_create(tenant=tenant, data={"name": "Sale", "channels": ["email"], "template": "promo",
                                                    "audience": {"recipients": [f"u{i}" for i in range(250)]}})
    campaign_schedule(tenant=tenant, campaign_id=campaign.id)
    campaigns_tick()
    stats = campaign_fanout(campaign_id=campaign.id, writers=3)
    assert (stats.chunks, stats.rows, stats.stopped) == (13, 250, "")
    rows = Message.objects.filter(batch__metadata__campaign_id=str(campaign.id))
    assert rows.count() == 250 and rows.values("recipient_address").distinct().count() == 250
    campaign.refresh_from_db()
    assert campaign.fanout_done and campaign.queued_count == 250 and campaign.batches.count() == 13
    assert campaign.batches.filter(released_at__isnull=False).count() == 3  # the window
    assert _count(status="queued") == 60 and _count(status="scheduled") == 190
    again = campaign_fanout(campaign_id=campaign.id, writers=3)  # a repeated task writes nothing
    assert again.stopped == "done" and Message.objects.count() == 250

"""message_advance: the one path by which a provider event moves a message, forward only, logged."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import DeliveryLog, Message
from delivery.services.status import FORWARD_FROM, message_advance

pytestmark = pytest.mark.django_db


def _message(tenant, status: str = "sent") -> Message:
    return Message.objects.create(tenant=tenant, channel="email", recipient_address="a@example.com",
                                  status=status, attempt_count=1, sent_at=timezone.now())


def _lines(message: Message) -> list[tuple[str, bool]]:
    rows = DeliveryLog.objects.filter(message=message).order_by("id")
    return [(row.event, row.data["status_changed"]) for row in rows]


def test_status_moves_forward_and_never_back(tenant):
    message = _message(tenant)
    at = timezone.now() - timedelta(minutes=5)
    assert message_advance(message=message, status="delivered", log_event="delivered", at=at, provider="esp")
    assert message_advance(message=message, status="bounced", log_event="bounced", at=at, provider="esp")
    # A late 'delivered' and a 'failed' after the bounce change nothing, but are still logged.
    assert not message_advance(message=message, status="delivered", log_event="delivered", at=at, provider="esp")
    assert not message_advance(message=message, status="failed", log_event="failed", at=at, provider="esp")
    stored = Message.objects.get(pk=message.pk)
    assert (stored.status, message.status) == ("bounced", "bounced")
    assert stored.delivered_at == at and stored.failed_at == at
    assert _lines(message) == [("delivered", True), ("bounced", True), ("delivered", False), ("failed", False)]


def test_a_message_not_yet_sent_is_not_moved(tenant):
    message = _message(tenant, status="queued")
    assert not message_advance(message=message, status="delivered", log_event="delivered", at=timezone.now())
    assert Message.objects.get(pk=message.pk).status == "queued" and message.status == "queued"
    assert Message.objects.get(pk=message.pk).delivered_at is None


@pytest.mark.parametrize("backwards", ["queued", "sending", "sent", "scheduled", "cancelled", "dead"])
def test_no_path_to_a_status_outside_the_forward_map(tenant, backwards):
    message = _message(tenant, status="delivered")
    with pytest.raises(ValueError):
        message_advance(message=message, status=backwards, log_event="requeued", at=timezone.now())
    assert Message.objects.get(pk=message.pk).status == "delivered"
    assert not DeliveryLog.objects.filter(message=message).exists()
    assert backwards not in FORWARD_FROM


def test_an_event_without_a_status_is_only_logged(tenant):
    message = _message(tenant)
    now = timezone.now()
    assert not message_advance(message=message, status=None, log_event="opened", at=now, now=now, provider="comms",
                               provider_event_id="e" * 300, status_code="x" * 40, detail="d",
                               data={"event": 7, "url": "https://example.com/"})
    [row] = DeliveryLog.objects.filter(message=message)
    assert (row.event, row.at, row.attempt, row.provider) == ("opened", now, 1, "comms")
    assert (len(row.provider_event_id), len(row.status_code), row.detail) == (255, 32, "d")
    assert row.data == {"event": 7, "url": "https://example.com/", "status_changed": False}
    assert Message.objects.get(pk=message.pk).status == "sent"

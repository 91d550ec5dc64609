"""Offline notifications: one email digest of unread messages after the window, never one per message,
nothing when the participant read them or is online."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.conversations.models import ConversationMessage, Participant
from comms.conversations.offline import offline_digests_send
from delivery.models import Message
from tests.conversations.conftest import drain, post

pytestmark = pytest.mark.django_db


def _post(conversation, sender, body, at):
    message, _ = post(conversation=conversation, sender=sender, body=body, fanout=False)
    ConversationMessage.objects.filter(pk=message.pk).update(created_at=at)
    return message


def _digests(participant):
    return Message.objects.filter(metadata__participant_id=str(participant.pk), metadata__has_key="offline_digest_upto")


def test_one_digest_for_many_messages_then_only_newer_ones(conversation, smtp_sink):
    ada, bob = conversation.ada, conversation.bob
    t0 = timezone.now()
    Participant.objects.filter(pk=ada.pk).update(last_seen_at=t0 - timedelta(hours=1))
    for n in range(5):
        _post(conversation, bob, f"update {n}", t0 + timedelta(seconds=n))
    assert offline_digests_send(now=t0 + timedelta(minutes=5)).sent == 0  # the window has not passed
    assert offline_digests_send(now=t0 + timedelta(minutes=16)).sent == 1
    assert offline_digests_send(now=t0 + timedelta(minutes=17)).sent == 0  # never twice
    [digest] = _digests(ada)
    assert digest.channel == "email" and digest.recipient_address == "ada@example.com"
    assert digest.subject == "5 unread messages in Order 1042"
    assert all(f"update {n}" in digest.body for n in range(5))
    drain()
    assert [m["Subject"] for m in smtp_sink.messages if m["To"] == "ada@example.com"] == [digest.subject]

    _post(conversation, bob, "one more", t0 + timedelta(minutes=18))
    assert offline_digests_send(now=t0 + timedelta(minutes=25)).sent == 0  # one digest per window
    assert offline_digests_send(now=t0 + timedelta(minutes=34)).sent == 1
    latest = _digests(ada).order_by("-created_at").first()
    assert latest.subject == "1 unread message in Order 1042" and "update 0" not in latest.body


def test_nothing_when_read_meanwhile_or_online(conversation):
    ada, bob = conversation.ada, conversation.bob
    t0 = timezone.now()
    Participant.objects.filter(pk=ada.pk).update(last_seen_at=t0 - timedelta(hours=1))
    last = _post(conversation, bob, "are you there?", t0)
    Participant.objects.filter(pk=ada.pk).update(last_read_index=last.index)  # read it in the app
    assert offline_digests_send(now=t0 + timedelta(minutes=20)).sent == 0
    _post(conversation, bob, "still there?", t0 + timedelta(minutes=1))
    Participant.objects.filter(pk=ada.pk).update(last_seen_at=t0 + timedelta(minutes=19))  # online
    assert offline_digests_send(now=t0 + timedelta(minutes=20)).sent == 0
    assert offline_digests_send(now=t0 + timedelta(minutes=40)).sent == 1  # gone quiet: now notified
    assert not _digests(bob).exists()  # SMS participants get the messages themselves, not digests


def always_online(*, participant) -> bool:
    return True


def test_presence_hook_and_the_beat_task(conversation, settings):
    from comms.conversations.tasks import channels_tick

    ada, bob = conversation.ada, conversation.bob
    Participant.objects.filter(pk=ada.pk).update(last_seen_at=timezone.now() - timedelta(hours=2))
    _post(conversation, bob, "hi", timezone.now() - timedelta(minutes=30))
    settings.COMMS_CONVERSATIONS_PRESENCE = "tests.conversations.test_offline_digest.always_online"
    assert channels_tick()["digests_sent"] == 0  # connected over WebSocket: no email
    settings.COMMS_CONVERSATIONS_PRESENCE = ""
    assert channels_tick()["digests_sent"] == 1
    assert channels_tick()["digests_sent"] == 0


def test_default_presence_is_the_websocket_presence_in_redis(conversation, settings):
    """A socket connected for an hour (last_seen_at is its connect time) gets no digest; after it closes
    (Redis knows nothing of the person), last_seen_at decides and the digest goes out."""
    from django.conf import settings as live

    from comms.conversations import presence

    assert live.COMMS_CONVERSATIONS_PRESENCE == "comms.conversations.presence.participant_online"
    ada, bob = conversation.ada, conversation.bob
    now = timezone.now()
    Participant.objects.filter(pk=ada.pk).update(last_seen_at=now - timedelta(hours=1))
    _post(conversation, bob, "hi", now - timedelta(minutes=30))
    presence.connect(recipient_id=str(ada.recipient_id), conn_id="tab", ttl=60)
    assert offline_digests_send(now=now).sent == 0
    presence.disconnect(recipient_id=str(ada.recipient_id), conn_id="tab")
    assert offline_digests_send(now=now).sent == 1

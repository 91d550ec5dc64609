"""The service contract other features build on: message_post from an inbound channel (a sender
participant and a source), the message hooks on commit, idempotency under the row lock."""

from __future__ import annotations

import pytest

from comms.conversations.models import Participant
from comms.conversations.services import ParticipantSpec, conversation_create, message_post

pytestmark = pytest.mark.django_db
CALLS: list = []


def record_hook(*, message_id) -> None:
    CALLS.append(message_id)


def test_inbound_channel_posts_with_a_source_and_hooks_run_on_commit(tenant, people, settings,
                                                                     django_capture_on_commit_callbacks):
    settings.COMMS_CONVERSATION_MESSAGE_HOOKS = ["tests.conversations.test_services.record_hook"]
    CALLS.clear()
    conversation = conversation_create(tenant=tenant, participants=[
        ParticipantSpec(recipient=people["alice"]),
        ParticipantSpec(recipient=people["bob"], binding="sms", address="+14155550100")])
    sms_bob = Participant.objects.get(conversation=conversation, binding="sms")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message, created = message_post(conversation=conversation, sender=sms_bob, body="on my way",
                                        source="sms", client_key="SM123")
    assert created and message.source == "sms" and message.index == 1
    assert CALLS == [message.id]
    assert len(callbacks) == 2  # the live event and the hooks, both after the commit
    # The same SMS (a provider retry with the same MessageSid as client_key) does not post twice.
    again, created = message_post(conversation=conversation, sender=sms_bob, body="on my way", source="sms",
                                  client_key="SM123")
    assert not created and again.id == message.id and CALLS == [message.id]

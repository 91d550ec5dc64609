"""GDPR erasure of a conversation participant: participations, their messages (bodies and revisions
erased, not tombstoned) and attachment files removed; everyone else's messages stay."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from comms.conversations.attachments import attachment_store, storage
from comms.conversations.models import (
    Attachment, Conversation, ConversationMessage, MessageRevision, Participant, Receipt,
)
from comms.models import Recipient
from preferences.services import recipient_erase
from tests.conversations.conftest import post

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(out, format="PNG")
    return out.getvalue()


def test_erasure_removes_the_person_and_keeps_the_others(conversation, smtp_sink):
    ada, bob = conversation.ada, conversation.bob
    mine, _ = post(conversation=conversation, sender=ada, body="Hello Bob", fanout=False)
    his, _ = post(conversation=conversation, sender=bob, body="My address is 1 Main St", fanout=False)
    MessageRevision.objects.create(message=his, action="edit", editor=bob, previous_body="My address is 2 Main St")
    photo = attachment_store(conversation=conversation, data=_png(), filename="door.png", uploaded_by=bob, message=his)
    names = [photo.file.name, photo.thumbnail.name]
    assert all(storage().exists(n) for n in names)
    Receipt.objects.create(message=mine, participant=bob)

    done = recipient_erase(recipient=bob.recipient)

    assert done["conversation_participants"] == 1 and done["conversation_messages"] == 1
    assert not Participant.objects.filter(pk=bob.pk).exists()
    assert not ConversationMessage.objects.filter(pk=his.pk).exists()
    assert not ConversationMessage.objects.filter(body__contains="Main St").exists()
    assert not MessageRevision.objects.filter(previous_body__contains="Main St").exists()
    assert not Attachment.objects.filter(pk=photo.pk).exists()
    assert not any(storage().exists(n) for n in names)  # the bytes are gone, not just the row
    assert not Receipt.objects.filter(participant_id=bob.pk).exists()
    kept = ConversationMessage.objects.get(pk=mine.pk)
    assert kept.body == "Hello Bob" and Participant.objects.filter(pk=ada.pk).exists()
    assert Participant.objects.filter(pk=conversation.cy.pk).exists()


def test_erasure_finds_an_address_only_support_participant(tenant):
    person = Recipient.objects.create(tenant=tenant, external_id="walk-in", phone="+14155550777")
    support = Conversation.objects.create(tenant=tenant, kind=Conversation.Kind.SUPPORT)
    walk_in = Participant.objects.create(tenant=tenant, conversation=support, binding="sms", address="+14155550777")
    post(conversation=support, sender=walk_in, body="my card number is …", fanout=False)
    other = Participant.objects.create(tenant=tenant, conversation=support, binding="sms", address="+14155550888")
    post(conversation=support, sender=other, body="unrelated", fanout=False)

    recipient_erase(recipient=person)

    assert not Participant.objects.filter(pk=walk_in.pk).exists()
    assert list(support.messages.values_list("body", flat=True)) == ["unrelated"]


def test_erasure_clears_presence_typing_receipts_and_keeps_no_text_in_the_audit_log(conversation):
    import json

    from django.test import TestCase

    from comms.audit import AuditEntry
    from comms.conversations import presence
    from comms.conversations.services import message_edit
    from comms.redis import redis_client

    ada, bob = conversation.ada, conversation.bob
    rid = str(ada.recipient_id)
    presence.connect(recipient_id=rid, conn_id="tab-1", ttl=60)
    redis_client().set(f"comms:typing:{ada.pk}", 1, px=60_000)
    assert presence.online([rid]) == {rid}
    secret, _ = post(conversation=conversation, sender=ada, body="My PIN is 4321", fanout=False)
    message_edit(message=secret, editor=ada, body="(removed)")
    answer, _ = post(conversation=conversation, sender=bob, body="ok", fanout=False)
    Receipt.objects.create(message=answer, participant=ada, delivered_at=secret.created_at)

    with TestCase.captureOnCommitCallbacks(execute=True):  # the Redis side runs after the commit
        done = recipient_erase(recipient=ada.recipient)

    assert done["conversation_receipts"] == 1 and not Receipt.objects.filter(participant_id=ada.pk).exists()
    assert presence.online([rid]) == set()
    assert redis_client().zscore(presence.INDEX, rid) is None
    assert not redis_client().exists(f"{presence.PREFIX}{rid}", f"comms:typing:{ada.pk}")
    trail = json.dumps([e.diff for e in AuditEntry.objects.filter(action__startswith="conversation.")])
    assert "4321" not in trail  # the edit's previous body was in the revision only, now deleted
    assert not MessageRevision.objects.filter(previous_body__contains="4321").exists()

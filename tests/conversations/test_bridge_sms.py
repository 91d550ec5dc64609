"""An SMS participant in a conversation: outbound through the Twilio SDK against its stand-in, replies
through the signed Twilio inbound webhook, delivered receipts from Twilio's status callbacks."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
from django.test import TestCase
from PIL import Image
from twilio.request_validator import RequestValidator

from comms.audit import AuditEntry
from comms.conversations.bridge import conversation_message_fanout, receipts_refresh
from comms.conversations.models import Attachment, Conversation, ConversationMessage, Participant, Receipt
from delivery.models import Message
from webhooks.services import webhooks_process_pending
from tests.conversations.conftest import OUR_NUMBER, TOKEN, drain, post

pytestmark = pytest.mark.django_db
FORM = "application/x-www-form-urlencoded"


def _reply(client, twilio, *, sender="+14155550111", body="Sounds good", media=()):
    url = "http://testserver/webhooks/twilio/sms"
    fields, signature = twilio.inbound_sms(url=url, sender=sender, to=OUR_NUMBER, body=body, media=list(media))
    # The test's transaction never commits: run the post's on-commit hooks (the SMS/email fan-out) now.
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post("/webhooks/twilio/sms", urlencode(fields), content_type=FORM,
                               HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200, response.content
    return response, fields


def test_message_reaches_the_sms_participant_once_even_when_fanned_out_twice(conversation, twilio, smtp_sink):
    message, created = post(conversation=conversation, sender=conversation.ada, body="Your parcel left")
    assert created
    conversation_message_fanout(message=message)  # a retried fan-out: same idempotency keys
    drain()
    [sms] = twilio.messages
    assert (sms["To"], sms["Body"]) == ("+14155550111", "Ada: Your parcel left")
    receipt = Receipt.objects.get(message=message, participant=conversation.bob)
    outbound = Message.objects.get(pk=receipt.outbound_message_id)
    assert outbound.provider_ref == sms["sid"] and outbound.category == "messages"
    assert Message.objects.filter(metadata__conversation_message_id=str(message.pk)).count() == 2  # Bob + Cy


def test_preferences_apply_to_the_sms_participant(conversation, twilio, smtp_sink):
    from preferences.services import preferences_update

    preferences_update(recipient=conversation.bob.recipient, updated_by="test", source="test",
                       changes=[{"category": "messages", "channel": "sms", "enabled": False}])
    message, _ = post(conversation=conversation, sender=conversation.ada, body="Anyone?")
    drain()
    assert twilio.messages == []
    receipt = Receipt.objects.get(message=message, participant=conversation.bob)
    assert receipt.outbound_message_id is None  # refused by the pipeline: nothing sent, message stands


def test_twilio_delivered_status_becomes_the_delivered_receipt(conversation, twilio, smtp_sink, client):
    message, _ = post(conversation=conversation, sender=conversation.ada, body="Ping")
    drain()
    [sms] = twilio.messages
    url = "http://testserver/webhooks/twilio/status"
    fields = {"MessageSid": sms["sid"], "MessageStatus": "delivered", "To": sms["To"], "AccountSid": twilio.account_sid}
    response = client.post("/webhooks/twilio/status", urlencode(fields), content_type=FORM,
                           HTTP_X_TWILIO_SIGNATURE=RequestValidator(TOKEN).compute_signature(url, fields))
    assert response.status_code == 200
    webhooks_process_pending()
    receipt = Receipt.objects.get(message=message, participant=conversation.bob)
    assert receipt.delivered_at is None
    assert receipts_refresh() == 1
    receipt.refresh_from_db()
    assert receipt.delivered_at is not None


def test_sms_reply_lands_in_the_conversation_and_reaches_the_others(conversation, twilio, smtp_sink, client):
    post(conversation=conversation, sender=conversation.ada, body="Can we deliver tomorrow?")
    drain()
    response, fields = _reply(client, twilio, body="Yes, after 10am please")
    assert b"<Message>" not in response.content  # no keyword: no automatic answer
    reply = ConversationMessage.objects.get(conversation=conversation, index=2)
    assert (reply.sender_id, reply.source, reply.body) == (conversation.bob.pk, "sms", "Yes, after 10am please")
    conversation.bob.refresh_from_db()
    assert conversation.bob.last_read_index == 2
    # A redelivery of the same webhook (same MessageSid) posts nothing twice.
    client.post("/webhooks/twilio/sms", urlencode(fields), content_type=FORM,
                HTTP_X_TWILIO_SIGNATURE=RequestValidator(TOKEN).compute_signature(
                    "http://testserver/webhooks/twilio/sms", fields))
    assert ConversationMessage.objects.filter(conversation=conversation).count() == 2
    drain()
    to_cy = [m for m in smtp_sink.messages if m["To"] == "cy@example.net"]
    assert len(to_cy) == 2 and "Yes, after 10am please" in to_cy[-1].get_payload()[0].get_payload(decode=True).decode()
    assert len(twilio.messages) == 1  # the reply is not echoed back to its sender


def test_keywords_stay_first(conversation, twilio, client):
    response, _ = _reply(client, twilio, body="STOP")
    assert b"<Message>" in response.content
    assert not ConversationMessage.objects.filter(conversation=conversation).exists()


def test_most_recently_active_conversation_gets_the_reply(conversation, twilio, client, tenant):
    older = Conversation.objects.create(tenant=tenant, subject="Older")
    Participant.objects.create(tenant=tenant, conversation=older, recipient=conversation.bob.recipient,
                               binding=Participant.Binding.SMS, address="+14155550111")
    Conversation.objects.filter(pk=older.pk).update(updated_at=conversation.updated_at.replace(year=2020))
    _reply(client, twilio, body="Which one?")
    assert ConversationMessage.objects.get(body="Which one?").conversation_id == conversation.pk


def test_mms_media_is_fetched_from_twilio_and_stored(conversation, twilio, client):
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(png, format="PNG")
    _reply(client, twilio, body="Photo of the damage", media=[(png.getvalue(), "image/png")])
    [att] = Attachment.objects.filter(conversation=conversation)
    assert (att.content_type, att.width, att.height) == ("image/png", 40, 30)
    assert att.message.body == "Photo of the damage" and att.thumbnail.name


def test_unknown_sender_opens_a_support_conversation(conversation, twilio, client, settings):
    settings.COMMS_CONVERSATIONS_UNKNOWN_SENDER = "support"
    _reply(client, twilio, sender="+14155550999", body="Hello? Who is this")
    support = Conversation.objects.get(kind=Conversation.Kind.SUPPORT)
    [participant] = support.participants.all()
    assert (participant.binding, participant.address, participant.recipient_id) == ("sms", "+14155550999", None)
    assert support.messages.get().body == "Hello? Who is this"
    _reply(client, twilio, sender="+14155550999", body="Second message")
    assert Conversation.objects.filter(kind=Conversation.Kind.SUPPORT).count() == 1  # continued, not a new one
    assert support.messages.count() == 2


def test_unknown_sender_dropped_and_recorded(conversation, twilio, client, settings):
    settings.COMMS_CONVERSATIONS_UNKNOWN_SENDER = "drop"
    _reply(client, twilio, sender="+14155550999", body="spam spam")
    assert not ConversationMessage.objects.filter(body="spam spam").exists()
    assert not Conversation.objects.filter(kind=Conversation.Kind.SUPPORT).exists()
    entry = AuditEntry.objects.get(action="conversation.inbound_dropped")
    assert entry.diff["channel"] == "sms" and entry.diff["sender_hint"] == "0999"
    from webhooks.models import WebhookEvent

    assert "dropped: unknown sender" in WebhookEvent.objects.get(provider="twilio_sms").error


def test_stop_applies_to_conversation_messages(conversation, twilio, client, smtp_sink):
    _reply(client, twilio, body="STOP")
    message, _ = post(conversation=conversation, sender=conversation.ada, body="Still there?")
    drain()
    assert twilio.messages == []  # the STOP confirmation went in TwiML; nothing sent since
    assert Receipt.objects.get(message=message, participant=conversation.bob).outbound_message_id is None


def test_mms_media_on_a_private_address_is_not_fetched(conversation, twilio, client, settings):
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = []  # production: loopback (the stand-in) is not public
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    _reply(client, twilio, body="see photo", media=[(png.getvalue(), "image/png")])
    posted = ConversationMessage.objects.get(conversation=conversation, body="see photo")
    assert not Attachment.objects.filter(message=posted).exists()  # the text stands, the media is refused


def test_reply_to_a_closed_conversation_is_an_unknown_sender(conversation, twilio, client, settings):
    settings.COMMS_CONVERSATIONS_UNKNOWN_SENDER = "support"
    Conversation.objects.filter(pk=conversation.pk).update(state=Conversation.State.CLOSED)
    _reply(client, twilio, body="hello again")
    assert not ConversationMessage.objects.filter(conversation=conversation).exists()
    assert Conversation.objects.get(kind=Conversation.Kind.SUPPORT).messages.get().body == "hello again"


def test_a_reply_marks_earlier_messages_read_and_delivered(conversation, twilio, client, smtp_sink):
    sent, _ = post(conversation=conversation, sender=conversation.ada, body="Ready?")
    _reply(client, twilio, body="Ready when you are")  # ("Yes" is an opt-in keyword, like START)
    receipt = Receipt.objects.get(message=sent, participant=conversation.bob)
    assert receipt.read_at is not None and receipt.delivered_at is not None

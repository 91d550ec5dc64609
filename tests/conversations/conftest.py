"""Conversation fixtures.

Core (REST/WebSocket): recipients of the default tenant (`people`), their end-user tokens, and
`api_conversation`, a group conversation created through the API (its JSON).
Channels: `conversation`, a model conversation with an in-app sender, an SMS and an email participant,
and real providers (the Twilio stand-in, the SMTP sink) behind the send pipeline.
"""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from comms.conversations.models import Conversation, Participant
from comms.devserver.standins.twilio import TwilioStandIn
from comms.models import Recipient
from delivery.inbox import inbox_token
from delivery.models import ChannelProvider
from preferences.services import preferences_update

SID, TOKEN = "AC" + "7" * 32, "f" * 32
OUR_NUMBER = "+15005550006"


def end_user(recipient: Recipient) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Inbox {inbox_token(recipient=recipient)}")
    return client


@pytest.fixture
def people(tenant):
    """alice, bob, carol: recipients of the default tenant."""
    return {name: Recipient.objects.create(tenant=tenant, external_id=name, email=f"{name}@example.com")
            for name in ("alice", "bob", "carol")}


@pytest.fixture
def api_conversation(api, people):
    """A group conversation of alice and bob (carol is not in it), created through the API."""
    response = api.post("/api/v1/conversations", {"kind": "group", "subject": "Trip", "participants": [
        {"recipient_id": "alice", "display_name": "Alice"}, {"recipient_id": "bob", "display_name": "Bob"}]},
        format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def twilio(settings):
    settings.COMMS_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the media fetch reaches the loopback stand-in
    settings.COMMS_TWILIO = {**settings.COMMS_TWILIO, "account_sid": SID, "auth_token": TOKEN}
    stand_in = TwilioStandIn(SID, TOKEN)
    provider = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                               is_primary=True, options={"from_number": OUR_NUMBER, "base_url": stand_in.url})
    provider.credentials = {"account_sid": SID, "auth_token": TOKEN}
    provider.save()
    yield stand_in
    stand_in.close()


@pytest.fixture
def conversation(tenant):
    """Ada (in-app), Bob bound to SMS, Cy bound to email."""
    ada = Recipient.objects.create(tenant=tenant, external_id="ada", email="ada@example.com")
    bob = Recipient.objects.create(tenant=tenant, external_id="bob", phone="+14155550111")
    cy = Recipient.objects.create(tenant=tenant, external_id="cy", email="cy@example.net")
    conv = Conversation.objects.create(tenant=tenant, kind=Conversation.Kind.GROUP, subject="Order 1042")
    conv.ada = Participant.objects.create(tenant=tenant, conversation=conv, recipient=ada, display_name="Ada")
    conv.bob = Participant.objects.create(tenant=tenant, conversation=conv, recipient=bob, display_name="Bob",
                                          binding=Participant.Binding.SMS, address="+14155550111")
    # "messages" is off for SMS by default (catalogue): binding Bob to SMS is his opt-in, recorded as such.
    preferences_update(recipient=bob, changes=[{"category": "messages", "channel": "sms", "enabled": True}],
                       updated_by="test", source="test", consent_text="Text me conversation replies")
    conv.cy = Participant.objects.create(tenant=tenant, conversation=conv, recipient=cy, display_name="Cy",
                                         binding=Participant.Binding.EMAIL, address="cy@example.net")
    return conv


def drain():
    """Run the workers at noon UTC (messages respects quiet hours: at night SMS waits until 08:00)."""
    from delivery.services import drain_all

    noon = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(12), tzinfo=dt.timezone.utc)
    return drain_all(clock=lambda: noon)


def post(*, conversation, sender, body, fanout: bool = True, **extra):
    """services.message_post, with its on-commit side effects (event, SMS/email fan-out hook) run now:
    these tests are wrapped in a transaction that never commits. fanout=False drops them."""
    from django.test import TestCase

    from comms.conversations.services import message_post

    with TestCase.captureOnCommitCallbacks(execute=fanout):
        return message_post(conversation=conversation, sender=sender, body=body, **extra)

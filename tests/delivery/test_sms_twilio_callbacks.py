"""SMS delivery status end to end: the real Twilio SDK sends, the stand-in then POSTs Twilio's real
signed status callbacks (queued → sent → delivered | undelivered + ErrorCode) to our live webhook."""

from __future__ import annotations

import os

import pytest

from comms.devserver.standins.twilio import TwilioStandIn
from comms.enums import Status
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all
from preferences.models import Suppression
from tests.conftest import wait_for
from tracking.models import MessageEvent
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

SID, TOKEN = "AC" + "3" * 32, "sms-callback-token"


@pytest.fixture
def twilio_live(live_server, settings):
    settings.COMMS_TWILIO = {**settings.COMMS_TWILIO, "auth_token": ""}  # the provider row's token signs
    stand_in = TwilioStandIn(SID, TOKEN, callback_delay=0.02)
    row = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                          is_primary=True, options={"from_number": "+15005550006", "base_url": stand_in.url,
                                                    "status_callback": f"{live_server.url}/webhooks/twilio/status"})
    row.credentials = {"account_sid": SID, "auth_token": TOKEN}
    row.save()
    yield stand_in
    stand_in.close()


def _send(api, to: str) -> str:
    response = api.post("/api/v1/messages", {"channel": "sms", "to": to, "body": "Your code is 123456"},
                        format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def _settle(stand_in: TwilioStandIn, rows: int) -> list[WebhookEvent]:
    stand_in.callbacks.wait()
    wait_for(lambda: WebhookEvent.objects.count() >= rows, timeout=10, message=f"{rows} webhook rows")
    for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        webhook_process(webhook_id=pk)
    return list(WebhookEvent.objects.order_by("pk"))


def test_queued_sent_delivered_arrive_signed_and_deliver_the_message(api, twilio_live):
    message_id = _send(api, "+14155550123")
    drain_all()
    [sms] = twilio_live.messages
    assert sms["StatusCallback"].endswith("/webhooks/twilio/status")
    rows = _settle(twilio_live, rows=3)
    assert [r.event_type for r in rows] == ["queued", "sent", "delivered"]
    assert all(r.signature_valid and r.headers.get("X-Twilio-Signature") for r in rows)
    assert [r.state for r in rows] == ["processed"] * 3
    message = Message.objects.get(id=message_id)
    assert message.status == Status.DELIVERED and message.provider_ref == sms["sid"]
    assert list(MessageEvent.objects.filter(message_id=message_id).values_list("event_type", flat=True)) == [
        "delivered"]


def test_undelivered_with_an_error_code_fails_or_bounces_the_message(api, twilio_live, tenant):
    twilio_live.sms_outcomes["+14155550124"] = ("undelivered", "30007")  # carrier filtering: failed
    twilio_live.sms_outcomes["+14155550125"] = ("undelivered", "30005")  # unknown handset: hard bounce
    filtered, unknown = _send(api, "+14155550124"), _send(api, "+14155550125")
    drain_all()
    _settle(twilio_live, rows=6)
    assert Message.objects.get(id=filtered).status == Status.FAILED
    event = MessageEvent.objects.get(message_id=filtered)
    assert (event.event_type, event.data, event.reason) == ("failed", {"error_code": "30007"}, "Twilio error 30007")
    assert Message.objects.get(id=unknown).status == Status.BOUNCED
    assert Suppression.objects.filter(tenant=tenant, channel="sms", reason="hard_bounce").count() == 1


def test_a_message_sent_without_a_status_callback_gets_none(api, twilio_live):
    ChannelProvider.objects.filter(channel="sms").update(options={"from_number": "+15005550006",
                                                                  "base_url": twilio_live.url})
    from delivery import routing

    routing.clear_cache()
    _send(api, "+14155550123")
    drain_all()
    twilio_live.callbacks.wait()
    assert len(twilio_live.messages) == 1 and twilio_live.callbacks.sent == []

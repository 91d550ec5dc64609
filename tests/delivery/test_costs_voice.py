"""A voice call re-priced by its real length: the real Twilio SDK places the call on the loopback stand-in,
whose signed status callbacks reach our intake (live server); the final status settles the cost."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from comms.devserver.standins.twilio import TwilioStandIn
from delivery.costs import envelopes, prices
from delivery.costs.models import CostDaily
from delivery.costs.services import price_set
from delivery.models import ChannelProvider, DeliveryLog
from delivery.services import drain_all
from tests.conftest import wait_for
from webhooks.models import WebhookEvent
from webhooks.services import webhook_process

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

SID, TOKEN, CALLER = "AC" + "3" * 32, "voice-cost-token", "+15005550006"
TO = "+14155550123"


@pytest.fixture
def voice(live_server, settings):
    prices.clear_cache()
    envelopes.clear_cache()
    settings.COMMS_TWILIO = {**settings.COMMS_TWILIO, "auth_token": ""}  # only the provider row's token signs
    stand_in = TwilioStandIn(SID, TOKEN, callback_delay=0.02)
    row = ChannelProvider(channel="voice", name="twilio_voice",
                          provider_class="delivery.providers.twilio_voice.TwilioVoiceProvider", is_primary=True,
                          options={"from_number": CALLER, "base_url": stand_in.url, "callback_base": live_server.url})
    row.credentials = {"account_sid": SID, "auth_token": TOKEN}
    row.save()
    price_set(tenant=None, provider="twilio_voice", channel="voice", country="US", unit="minute", price="0.014",
              actor=None)
    yield stand_in
    stand_in.close()
    prices.clear_cache()


def _call(api) -> str:
    response = api.post("/api/v1/messages", {"channel": "voice", "to": TO, "body": "Your code is 1 2 3."},
                        format="json")
    assert response.status_code == 202, response.content
    assert drain_all().sent == 1
    return response.json()["id"]


def _settle(stand_in: TwilioStandIn, rows: int) -> None:
    """Wait for the stand-in's callbacks, then process every stored row as the Celery task would."""
    stand_in.callbacks.wait()
    wait_for(lambda: WebhookEvent.objects.count() >= rows, timeout=10, message=f"{rows} webhook rows")
    for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        webhook_process(webhook_id=pk)


def _daily() -> tuple[int, int, Decimal]:
    [row] = CostDaily.objects.filter(channel="voice")
    return row.messages, row.units, row.amount


def test_a_completed_call_is_priced_per_started_minute_once(api, voice, live_server):
    voice.call_outcomes[TO] = {"duration": "130"}  # 2 min 10 s: three started minutes
    message_id = _call(api)
    sent = DeliveryLog.objects.get(message_id=message_id, event="sent")
    assert (Decimal(sent.data["cost"]), sent.data["cost_units"]) == (Decimal("0.014"), 1)  # one minute when placed
    assert _daily() == (1, 1, Decimal("0.014"))
    _settle(voice, rows=4)
    final = DeliveryLog.objects.get(message_id=message_id, event="delivered")
    assert Decimal(final.data["cost"]) == Decimal("0.042") and final.data["cost_units"] == 3
    assert Decimal(final.data["cost_adjustment"]) == Decimal("0.028")
    assert Decimal(final.data["cost_at_send"]) == Decimal("0.014") and final.data["cost_unit"] == "minute"
    assert Decimal(DeliveryLog.objects.get(pk=sent.pk).data["cost"]) == Decimal("0.014")  # history kept as it was
    assert _daily() == (1, 3, Decimal("0.042"))
    # Twilio retries a callback it thinks failed: the same signed request again, and a re-run of every row.
    completed = next(c for c in voice.callbacks.sent if c.fields.get("CallStatus") == "completed")
    again = voice.callbacks.signed_post(completed.url, completed.fields)
    assert again.status == 200
    for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        webhook_process(webhook_id=pk)
    assert _daily() == (1, 3, Decimal("0.042"))
    assert DeliveryLog.objects.filter(message_id=message_id, data__has_key="cost_adjustment").count() == 1
    detail = api.get(f"/api/v1/messages/{message_id}").json()
    assert detail["cost"] == {"amount": "0.042000", "currency": "USD", "units": 3, "unit": "minute",
                              "country": "US", "at_send": "0.014000", "adjustment": "0.028000"}


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
def test_a_call_that_never_connected_costs_nothing(api, voice, outcome):
    voice.call_outcomes[TO] = {"status": outcome}
    message_id = _call(api)
    _settle(voice, rows=2 if outcome == "failed" else 3)
    final = DeliveryLog.objects.get(message_id=message_id, event="failed")
    assert (Decimal(final.data["cost"]), final.data["cost_units"]) == (Decimal(0), 0)
    assert Decimal(final.data["cost_adjustment"]) == Decimal("-0.014")
    assert _daily() == (1, 0, Decimal(0))  # still one message of the day, now free

"""Cost roll-up attribution: a real SMS campaign through the Twilio stand-in is attributed to its
campaign (its id lives on the fan-out's batches, not on each row), a journey send to its journey."""

from __future__ import annotations

from decimal import Decimal

import pytest

from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.services import campaigns_tick
from comms.models import Recipient
from delivery.costs import envelopes, prices
from delivery.costs.services import price_set
from delivery.models import DeliveryLog, Message
from delivery.services import SendSpec, drain_all, message_enqueue
from tests.comms.router_fixtures import live_template

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    prices.clear_cache()
    envelopes.clear_cache()
    yield
    prices.clear_cache()


def _costs(message_ids) -> Decimal:
    logs = DeliveryLog.objects.filter(message_id__in=list(message_ids), event="sent")
    return sum((Decimal(log.data["cost"]) for log in logs), Decimal(0))


def test_an_sms_campaigns_spend_is_the_sum_of_its_messages_costs(admin_api, api, tenant, twilio):
    price_set(tenant=None, provider="twilio", channel="sms", country="US", unit="segment", price="0.0079",
              actor=None)
    price_set(tenant=None, provider="twilio", channel="sms", country="GB", unit="segment", price="0.0400",
              actor=None)
    live_template(tenant, "flash_news", subject="News for {{name}}", body_html="<p>x</p>", category="operational",
                  schema={"type": "object", "properties": {"name": {"type": "string"}}}, sample={"name": "x"},
                  channels=["sms"], sms="Service update for {{name}}: the app is back.")
    for ext, phone in (("ann", "+14155550101"), ("ben", "+14155550102"), ("cat", "+447400123456")):
        Recipient.objects.create(tenant=tenant, external_id=ext, phone=phone)
    created = admin_api.post("/api/v1/campaigns", {
        "name": "Outage over", "channels": ["sms"], "template": "flash_news", "variables": {"name": "friend"},
        "category": "operational", "audience": {"recipients": ["ann", "ben", "cat"]}}, format="json")
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    assert admin_api.post(f"/api/v1/campaigns/{cid}/schedule").status_code == 200
    campaigns_tick()
    assert campaign_fanout(campaign_id=cid).rows == 3
    # A one-off SMS of the same tenant beside it: not the campaign's.
    assert api.post("/api/v1/messages", {"channel": "sms", "to": "+14155550199", "body": "hi"},
                    format="json").status_code == 202
    assert drain_all().sent == 4
    assert len(twilio.messages) == 4
    campaign_rows = Message.objects.filter(batch__isnull=False)
    assert campaign_rows.count() == 3 and all(not m.metadata.get("campaign_id") for m in campaign_rows)
    expected = _costs(campaign_rows.values_list("id", flat=True))
    assert expected == Decimal("0.0079") * 2 + Decimal("0.04")
    rows = api.get("/api/v1/costs?group_by=campaign").json()["results"]
    by_campaign = {r["campaign"]: r for r in rows}
    assert Decimal(by_campaign[cid]["amount"]) == expected and by_campaign[cid]["messages"] == 3
    assert Decimal(by_campaign[""]["amount"]) == Decimal("0.0079") and by_campaign[""]["messages"] == 1


def test_a_journey_send_is_attributed_to_its_journey(api, tenant, twilio):
    price_set(tenant=None, provider="twilio", channel="sms", unit="segment", price="0.01", actor=None)
    message_enqueue(tenant=tenant, spec=SendSpec(channel="sms", to="+14155550120", body="Welcome!",
                                                 metadata={"journey": "welcome", "journey_run": "r1"}))
    assert drain_all().sent == 1
    [row] = api.get("/api/v1/costs?group_by=campaign").json()["results"]
    assert (row["campaign"], Decimal(row["amount"])) == ("journey:welcome", Decimal("0.01"))


def test_a_bulk_sms_is_priced_on_the_text_it_sent(api, tenant, twilio):
    """Bulk rows keep no body of their own (the batch holds it, templates render at send): the price
    counts the segments of what the provider was given, not of the row's empty body."""
    price_set(tenant=None, provider="twilio", channel="sms", unit="segment", price="0.01", actor=None)
    body = "y" * 200  # GSM-7, two segments of 153 (GSM 03.38)
    response = api.post("/api/v1/messages/bulk", {"channel": "sms", "body": body, "metadata": {"campaign_id": "c-7"},
                                                  "recipients": [{"to": "+14155550130"}, {"to": "+14155550131"}]},
                        format="json")
    assert response.status_code == 202, response.content
    assert drain_all().sent == 2
    assert [m["Body"] for m in twilio.messages] == [body, body]
    assert {log.data["cost_units"] for log in DeliveryLog.objects.filter(event="sent")} == {2}
    [row] = api.get("/api/v1/costs?group_by=campaign").json()["results"]
    assert (row["campaign"], row["units"], Decimal(row["amount"])) == ("c-7", 4, Decimal("0.04"))

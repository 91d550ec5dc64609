"""A message's cost where people look at messages: the API's list and detail, the admin's message page
and its CSV export, and the roll-up as CSV. Real SMS sends through the Twilio stand-in."""

from __future__ import annotations

import csv
import io
import os
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from delivery.costs import envelopes, prices
from delivery.costs.services import price_set
from delivery.models import ChannelProvider, Message
from delivery.services import drain_all

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    prices.clear_cache()
    envelopes.clear_cache()
    yield
    prices.clear_cache()


@pytest.fixture
def priced(api, twilio, smtp_sink):
    """Three SMS (two US, one of them two segments; one GB) and one unpriced email, all sent."""
    price_set(tenant=None, provider="twilio", channel="sms", country="US", unit="segment", price="0.0079", actor=None)
    price_set(tenant=None, provider="twilio", channel="sms", country="GB", unit="segment", price="0.04", actor=None)
    ids = {}
    for to, body in (("+14155550100", "hi"), ("+14155550101", "x" * 200), ("+447400123456", "hi")):
        ids[to] = api.post("/api/v1/messages", {"channel": "sms", "to": to, "body": body}, format="json").json()["id"]
    ids["mail"] = api.post("/api/v1/messages", {"channel": "email", "to": "m@example.com", "subject": "s",
                                                "body": "b"}, format="json").json()["id"]
    ChannelProvider.objects.create(channel="email", name="relay", provider_class="delivery.providers.smtp.SmtpProvider",
                                   is_primary=True, options={"port": int(os.environ["EMAIL_PORT"])})
    assert drain_all().sent == 4
    return ids


def test_the_message_list_and_detail_show_the_cost(api, priced):
    results = {m["id"]: m for m in api.get("/api/v1/messages").json()["results"]}
    assert results[priced["+14155550101"]]["cost"] == {
        "amount": "0.015800", "currency": "USD", "units": 2, "unit": "segment", "country": "US",
        "at_send": "0.015800", "adjustment": None}
    assert results[priced["+447400123456"]]["cost"]["country"] == "GB"
    assert results[priced["mail"]]["cost"] is None  # sent, but its provider has no price
    detail = api.get(f"/api/v1/messages/{priced['+14155550100']}").json()
    assert (Decimal(detail["cost"]["amount"]), detail["cost"]["units"]) == (Decimal("0.0079"), 1)
    # The page's costs are one query, whatever the page size.
    with CaptureQueriesContext(connection) as one:
        api.get("/api/v1/messages?limit=1")
    with CaptureQueriesContext(connection) as four:
        api.get("/api/v1/messages?limit=4")
    assert len(four.captured_queries) == len(one.captured_queries)


def test_the_cost_rollup_is_also_csv(api, priced):
    response = api.get("/api/v1/costs?group_by=country&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["country", "currency", "messages", "units", "amount"]
    assert {r[0]: (r[2], r[3], Decimal(r[4])) for r in rows[1:]} == {
        "GB": ("1", "1", Decimal("0.04")), "US": ("2", "3", Decimal("0.0237"))}
    refused = api.get("/api/v1/costs?format=xml")
    assert refused.status_code == 400 and refused.json()["code"] == "COMMS_VALIDATION_ERROR"
    assert api.get("/api/v1/costs?format=json").json()["group_by"] == ["channel"]


def test_the_admin_message_page_and_export_show_the_cost(admin_client, priced):
    page = admin_client.get(f"/admin/delivery/message/{priced['+14155550101']}/change/").content.decode()
    assert "0.015800 USD · 2 segments · US" in page
    assert "not priced" in admin_client.get(f"/admin/delivery/message/{priced['mail']}/change/").content.decode()
    response = admin_client.post("/admin/delivery/message/", {
        "action": "export_selected", "_selected_action": [str(m.id) for m in Message.objects.all()]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    # E.164 numbers start with "+": the export quotes them so a spreadsheet never runs a cell as a formula.
    by_address = {r["recipient_address"].removeprefix("'"): r for r in rows}
    assert rows[0]["recipient_address"][:2] in ("'+", "m@")
    assert len(rows) == 4
    assert (by_address["+14155550101"]["cost"], by_address["+14155550101"]["cost_units"],
            by_address["+14155550101"]["cost_unit"]) == ("0.015800", "2", "segment")
    assert by_address["+447400123456"]["country"] == "GB"
    assert by_address["m@example.com"]["cost"] == ""

"""Cost tracking and envelopes (issue 22 item 2), through real sends: Twilio stand-in and the SMTP sink."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from comms.enums import Status
from delivery.costs import envelopes, prices
from delivery.costs.models import CostDaily, CostEnvelope
from delivery.costs.services import envelope_set, price_set
from delivery.models import ChannelProvider, DeliveryLog, Message
from delivery.services import SendSpec, drain_all, message_enqueue, waiting_promote

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"
ALERTS: list[dict] = []


def record_alert(*, kind: str, text: str, data: dict) -> None:
    """COMMS_OPS_ALERT for these tests: keep what was raised."""
    ALERTS.append({"kind": kind, "text": text, **data})


@pytest.fixture(autouse=True)
def _fresh(settings):
    prices.clear_cache()
    envelopes.clear_cache()
    ALERTS.clear()
    settings.COMMS_OPS_ALERT = f"{__name__}.record_alert"
    yield
    prices.clear_cache()
    envelopes.clear_cache()


@pytest.fixture
def smtp(tenant, smtp_sink):
    import os

    ChannelProvider.objects.create(channel="email", name="relay", provider_class=SMTP, is_primary=True,
                                   options={"port": int(os.environ["EMAIL_PORT"])})
    return smtp_sink


def _email(tenant, i, **spec):
    return message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"c{i}@example.com", subject="s",
                                                        body="b", **spec))[0]


def test_sms_is_priced_per_segment_by_destination_country_and_rolled_up(api, admin_api, twilio, tenant):
    price_set(tenant=None, provider="twilio", channel="sms", country="US", unit="segment", price="0.0079",
              actor=None)
    price_set(tenant=None, provider="twilio", channel="sms", country="GB", unit="segment", price="0.0400",
              actor=None)
    long_body = "x" * 200  # GSM-7, 200 septets: two segments of 153 (GSM 03.38)
    for to, body in (("+14155550100", "hi"), ("+14155550101", long_body), ("+447400123456", "hi")):
        assert api.post("/api/v1/messages", {"channel": "sms", "to": to, "body": body}, format="json").status_code == 202
    assert drain_all().sent == 3
    assert len(twilio.messages) == 3
    logged = {log.message.recipient_address: log.data for log in DeliveryLog.objects.filter(event="sent")}
    assert logged["+14155550100"]["cost"] == "0.0079000" or Decimal(logged["+14155550100"]["cost"]) == Decimal("0.0079")
    assert Decimal(logged["+14155550101"]["cost"]) == Decimal("0.0158")
    assert logged["+14155550101"]["cost_units"] == 2
    assert (logged["+447400123456"]["country"], Decimal(logged["+447400123456"]["cost"])) == ("GB", Decimal("0.04"))
    body = api.get("/api/v1/costs?group_by=provider,country").json()
    rows = {r["country"]: r for r in body["results"]}
    assert Decimal(rows["US"]["amount"]) == Decimal("0.0237") and rows["US"]["messages"] == 2
    assert rows["US"]["units"] == 3 and rows["US"]["currency"] == "USD"
    assert Decimal(rows["GB"]["amount"]) == Decimal("0.04")


def test_email_costs_roll_up_per_campaign_and_template_and_a_tenant_price_wins(tenant, smtp, api):
    price_set(tenant=None, provider="relay", channel="email", price="0.001", actor=None)
    price_set(tenant=tenant, provider="relay", channel="email", price="0.0005", actor=None)
    for i in range(3):
        _email(tenant, i, metadata={"campaign_id": "camp-1"})
    _email(tenant, 9)
    assert drain_all().sent == 4
    assert len(smtp.messages) == 4
    rows = api.get("/api/v1/costs?group_by=campaign,channel").json()["results"]
    by_campaign = {r["campaign"]: r for r in rows}
    assert Decimal(by_campaign["camp-1"]["amount"]) == Decimal("0.0015") and by_campaign["camp-1"]["messages"] == 3
    assert Decimal(by_campaign[""]["amount"]) == Decimal("0.0005")
    assert CostDaily.objects.count() == 2  # upserted, not one row per message


def test_unpriced_sends_record_no_cost(tenant, smtp):
    _email(tenant, 1)
    assert drain_all().sent == 1
    assert "cost" not in DeliveryLog.objects.get(event="sent").data
    assert CostDaily.objects.count() == 0


def test_an_envelope_alerts_at_80_percent_once_and_holds_non_critical_sends_at_100(tenant, smtp, api):
    price_set(tenant=None, provider="relay", channel="email", price="1.00", actor=None)
    envelope_set(tenant=tenant, channel="email", monthly_budget="5", actor=None)
    for i in range(4):
        _email(tenant, i)
    assert drain_all().sent == 4  # 4.00 spent: 80 %
    _email(tenant, 4)
    assert drain_all().sent == 1  # 5.00: the budget is reached by this send
    assert [a["kind"] for a in ALERTS] == ["cost.envelope_warning"]
    assert ALERTS[0]["percent"] == 80.0 and ALERTS[0]["spent"] == "4.000000"  # seen at the next claim
    marketing = _email(tenant, 5, category="marketing")
    security = _email(tenant, 6, category="security")
    stats = drain_all()
    assert (stats.sent, stats.deferred) == (1, 1)
    held = Message.objects.get(id=marketing.id)
    assert held.status == Status.DEFERRED and held.failure_code == "COMMS_BUDGET_EXHAUSTED"
    assert held.attempt_count == 0 and held.next_attempt_at == envelopes.next_month(timezone.now())
    assert Message.objects.get(id=security.id).status == Status.SENT  # critical always passes
    assert [a["kind"] for a in ALERTS] == ["cost.envelope_warning", "cost.envelope_exhausted"]
    _email(tenant, 7, category="marketing")
    drain_all()
    assert len(ALERTS) == 2  # each level alerts once a month
    assert len(smtp.messages) == 6
    listed = api.get("/api/v1/cost-envelopes").json()["results"][0]
    assert listed["spent_this_month"] == "6.000000" and listed["percent_used"] == 120.0
    # Raising the budget releases what the envelope held.
    envelope_set(tenant=tenant, channel="email", monthly_budget="100", actor=None)
    assert waiting_promote(now=timezone.now() + timedelta(seconds=1)) == 2
    assert drain_all(clock=lambda: timezone.now() + timedelta(seconds=2)).sent == 2


def test_a_negative_price_is_a_typed_error(admin_api):
    bad = admin_api.put("/api/v1/prices", {"provider": "twilio", "channel": "sms", "country": "US",
                                           "unit": "segment", "price": "-0.01"}, format="json")
    assert bad.status_code == 422 and bad.json()["code"] == "COMMS_PRICE_INVALID"
    assert bad.json()["details"]["field"] == "price"
    junk = admin_api.put("/api/v1/prices", {"provider": "t", "channel": "sms", "price": "NaN"}, format="json")
    assert junk.status_code == 422 and junk.json()["code"] == "COMMS_PRICE_INVALID"
    ok = admin_api.put("/api/v1/prices", {"provider": "twilio", "channel": "sms", "country": "us",
                                          "unit": "segment", "price": "0.0079", "currency": "usd"}, format="json")
    assert ok.status_code == 200 and ok.json()["country"] == "US" and ok.json()["currency"] == "USD"
    assert [p["price"] for p in admin_api.get("/api/v1/prices").json()["results"]] == ["0.007900"]


def test_an_envelope_below_this_months_spend_is_a_typed_error(admin_api, tenant, smtp):
    price_set(tenant=None, provider="relay", channel="email", price="2", actor=None)
    _email(tenant, 1)
    drain_all()
    bad = admin_api.put("/api/v1/cost-envelopes", {"channel": "email", "monthly_budget": "1.5"}, format="json")
    assert bad.status_code == 422 and bad.json()["code"] == "COMMS_ENVELOPE_BELOW_SPENT"
    assert bad.json()["details"]["spent"] == "2.000000"
    assert CostEnvelope.objects.count() == 0
    ok = admin_api.put("/api/v1/cost-envelopes", {"channel": "email", "monthly_budget": "2"}, format="json")
    assert ok.status_code == 200 and ok.json()["percent_used"] == 100.0


@pytest.mark.parametrize("query,code", [
    ("from=2026-03-01&to=2026-02-01", "COMMS_PERIOD_INVALID"),
    ("from=2024-01-01&to=2026-01-01", "COMMS_PERIOD_INVALID"),
    ("from=yesterday", "COMMS_PERIOD_INVALID"),
    ("group_by=channel,colour", "COMMS_UNKNOWN_DIMENSION"),
])
def test_bad_cost_queries_are_typed_errors(api, query, code):
    bad = api.get(f"/api/v1/costs?{query}")
    assert bad.status_code == 400 and bad.json()["code"] == code


def test_sms_is_refused_for_categories_the_tenant_does_not_allow(api, twilio, tenant):
    envelope_set(tenant=tenant, channel="sms", allowed_categories=["security", "transactional"], actor=None)
    refused = api.post("/api/v1/messages", {"channel": "sms", "to": "+14155550100", "body": "sale!",
                                            "category": "marketing"}, format="json")
    assert refused.status_code == 422 and refused.json()["code"] == "COMMS_SMS_CATEGORY_NOT_ALLOWED"
    assert refused.json()["details"]["allowed"] == ["security", "transactional"]
    assert api.post("/api/v1/messages", {"channel": "sms", "to": "+14155550100", "body": "code 1234",
                                         "category": "security"}, format="json").status_code == 202
    assert Message.objects.count() == 1


def _dead_primary_sms():
    """A Twilio provider row whose endpoint refuses connections: a transient failure that never reached it."""
    from comms.devserver.embedded import free_port
    from tests.delivery.conftest import SID, TOKEN

    row = ChannelProvider(channel="sms", name="down", provider_class="delivery.providers.twilio.TwilioProvider",
                          is_primary=True, order=0, options={"from_number": "+15005550006",
                                                             "base_url": f"http://127.0.0.1:{free_port()}"})
    row.credentials = {"account_sid": SID, "auth_token": TOKEN}
    row.save()
    ChannelProvider.objects.filter(name="twilio").update(is_primary=False, order=2)


@pytest.mark.parametrize("cap,sent", [("0.05", 0), ("0.10", 1)])
def test_a_failover_provider_priced_above_the_cap_is_skipped(tenant, twilio, cap, sent):
    _dead_primary_sms()
    price_set(tenant=None, provider="twilio", channel="sms", country="GB", unit="segment", price="0.08", actor=None)
    envelope_set(tenant=tenant, channel="sms", failover_price_cap=cap, actor=None)
    m = message_enqueue(tenant=tenant, spec=SendSpec(channel="sms", to="+447400123456", body="hi"))[0]
    stats = drain_all()
    assert len(twilio.messages) == stats.sent == sent
    m.refresh_from_db()
    if sent:
        assert (m.status, m.provider) == (Status.SENT, "twilio")
    else:  # the primary's transient failure stands: retried later, the dear fallback never used
        assert m.status == Status.QUEUED and m.provider == "down" and m.attempt_count == 1


def test_a_negative_failover_cap_is_a_typed_error(admin_api):
    bad = admin_api.put("/api/v1/cost-envelopes", {"channel": "sms", "failover_price_cap": "-1"}, format="json")
    assert bad.status_code == 422 and bad.json()["code"] == "COMMS_PRICE_INVALID"


def test_a_bulk_sms_in_a_category_the_tenant_does_not_allow_is_refused_whole(api, twilio, tenant):
    envelope_set(tenant=tenant, channel="sms", allowed_categories=["transactional"], actor=None)
    refused = api.post("/api/v1/messages/bulk", {"channel": "sms", "body": "sale", "category": "marketing",
                                                 "recipients": [{"to": "+14155550100"}, {"to": "+14155550101"}]},
                       format="json")
    assert refused.status_code == 422 and refused.json()["code"] == "COMMS_SMS_CATEGORY_NOT_ALLOWED"
    assert Message.objects.count() == 0

"""P0 (emergency) is never held by a budget: not by the tenant's daily budget (API admission and the
engine's gate) nor by a spent monthly cost envelope. It is counted, so the day's room shrinks."""

from __future__ import annotations

import pytest

from comms import quotas
from comms.enums import Priority, Status
from comms.models import TenantQuota
from delivery.costs import envelopes, prices
from delivery.costs.services import envelope_set, price_set
from delivery.models import Message
from delivery.services import SendSpec, drain_all, message_enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    prices.clear_cache()
    envelopes.clear_cache()
    quotas.forget()
    yield
    prices.clear_cache()
    envelopes.clear_cache()
    quotas.forget()


def _enqueue(tenant, i, *, priority=Priority.P2, category="marketing"):
    return message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"e{i}@example.com", subject="s",
                                                        body="b", priority=priority, category=category))[0]


def _post(api, i, **extra):
    return api.post("/api/v1/messages", {"channel": "email", "to": f"a{i}@example.com", "subject": "s", "body": "b",
                                         **extra}, format="json")


def test_the_api_counts_but_never_refuses_an_emergency_over_the_daily_budget(api, tenant):
    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 1})
    assert _post(api, 1).status_code == 202
    assert _post(api, 2).status_code == 429
    assert _post(api, 3, priority="P0").status_code == 202
    bulk = api.post("/api/v1/messages/bulk", {"channel": "email", "subject": "s", "body": "b", "priority": 0,
                                              "recipients": [{"to": "b1@example.com"}, {"to": "b2@example.com"}]},
                    format="json")
    assert bulk.status_code == 202, bulk.content
    assert Message.objects.filter(priority=0).count() == 3
    [usage] = quotas.usage([tenant.id], now=Message.objects.first().created_at)
    assert usage["accepted"] == 4  # the emergencies took the day's room too


def test_the_engine_sends_p0_past_a_spent_daily_budget_and_defers_the_rest(tenant, smtp_sink):
    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 1})
    low = [_enqueue(tenant, i) for i in range(2)]
    assert drain_all().sent == 1  # the day's one send
    urgent = _enqueue(tenant, 9, priority=Priority.P0)
    drain_all()
    assert Message.objects.get(id=urgent.id).status == Status.SENT
    statuses = sorted(Message.objects.filter(id__in=[m.id for m in low]).values_list("status", "failure_code"))
    assert statuses == [("deferred", "COMMS_TENANT_QUOTA"), ("sent", "")]
    assert len(smtp_sink.messages) == 2


def test_a_spent_envelope_holds_marketing_but_not_a_p0_of_the_same_category(tenant, smtp_sink):
    price_set(tenant=None, provider="smtp", channel="email", price="1.00", actor=None)
    envelope_set(tenant=tenant, channel="email", monthly_budget="1", actor=None)
    _enqueue(tenant, 0)
    assert drain_all().sent == 1  # 1.00 of 1.00: spent
    urgent = _enqueue(tenant, 1, priority=Priority.P0)
    normal = _enqueue(tenant, 2)
    drain_all()
    assert Message.objects.get(id=urgent.id).status == Status.SENT
    held = Message.objects.get(id=normal.id)
    assert (held.status, held.failure_code) == (Status.DEFERRED, "COMMS_BUDGET_EXHAUSTED")

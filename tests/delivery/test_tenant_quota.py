"""Tenant quotas and budgets: typed refusals at the API, deferral (never loss) of accepted work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms import quotas
from comms.enums import Status
from comms.models import TenantQuota
from delivery.models import DeliveryLog, Message
from delivery.services import SendSpec, drain_all, message_enqueue, waiting_promote

pytestmark = pytest.mark.django_db


def _send(api, i, **extra):
    return api.post("/api/v1/messages", {"channel": "email", "to": f"q{i}@example.com", "subject": "s",
                                         "body": "b", **extra}, format="json")


def _bulk(api, n, prefix="r"):
    return api.post("/api/v1/messages/bulk", {"channel": "email", "subject": "s", "body": "b",
                                              "recipients": [{"to": f"{prefix}{i}@example.com"} for i in range(n)]},
                    format="json")


def test_api_requests_per_minute_answer_429_with_the_code(api, tenant):
    TenantQuota.objects.create(tenant=tenant, api_requests_per_minute=2)
    assert api.get("/api/v1/messages").status_code == 200
    assert _send(api, 1).status_code == 202
    refused = _send(api, 2)
    assert refused.status_code == 429 and refused.json()["code"] == "COMMS_TENANT_QUOTA"
    assert refused.json()["details"]["quota"] == "api_requests_per_minute"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert Message.objects.count() == 1


def test_a_bulk_call_over_the_plans_size_is_422(api, tenant, settings):
    settings.COMMS_TENANT_PLANS = {"default": {}, "small": {"max_bulk_size": 3}}
    TenantQuota.objects.create(tenant=tenant, plan="small")
    refused = _bulk(api, 4)
    assert refused.status_code == 422 and refused.json()["code"] == "COMMS_TENANT_QUOTA"
    assert refused.json()["details"] == {"quota": "max_bulk_size", "limit": 3, "requested": 4}
    assert Message.objects.count() == 0
    assert _bulk(api, 3).status_code == 202


def test_the_daily_budget_is_all_or_nothing_for_a_bulk_call(api, tenant):
    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 5})
    assert _bulk(api, 4, prefix="a").status_code == 202
    crossing = _bulk(api, 2, prefix="b")  # would cross the budget mid-way: nothing of it is accepted
    assert crossing.status_code == 429 and crossing.json()["code"] == "COMMS_TENANT_QUOTA"
    details = crossing.json()["details"]
    assert (details["limit"], details["used"], details["requested"], details["remaining"]) == (5, 4, 2, 1)
    assert int(crossing["Retry-After"]) == details["retry_after_seconds"] > 0
    assert Message.objects.count() == 4
    assert _send(api, 1, idempotency_key="k1").status_code == 202
    assert _send(api, 1, idempotency_key="k1").status_code == 200  # a replay accepts nothing new
    assert _send(api, 2).status_code == 429
    assert Message.objects.count() == 5
    assert _send(api, 3, channel="sms", to="+14155550100").status_code != 429  # another channel's budget


def test_a_refused_request_gives_its_budget_back(api, tenant):
    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 1})
    bad = api.post("/api/v1/messages", {"channel": "email", "to": "not-an-address", "body": "b"}, format="json")
    assert bad.status_code == 400
    assert _send(api, 1).status_code == 202


def test_accepted_work_over_the_daily_budget_waits_for_the_next_window(tenant, smtp_sink, settings):
    """Work accepted without the API (events, campaigns, schedules) is deferred to the next UTC day,
    never dropped, and goes out when that window opens."""
    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 3})
    sent = [message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to=f"d{i}@example.com", subject="s",
                                                         body="b"))[0] for i in range(5)]
    now = timezone.now()
    stats = drain_all(clock=lambda: now)
    assert (stats.sent, stats.deferred) == (3, 2)
    held = Message.objects.filter(id__in=[m.id for m in sent], status=Status.DEFERRED)
    assert held.count() == 2
    tomorrow = quotas.next_window(now)
    assert all(m.next_attempt_at == tomorrow and m.attempt_count == 0 for m in held)
    assert DeliveryLog.objects.filter(message__in=held, event="deferred", status_code="COMMS_TENANT_QUOTA").count() == 2
    assert waiting_promote(now=tomorrow - timedelta(seconds=1)) == 0  # still today: nothing released
    assert waiting_promote(now=tomorrow + timedelta(seconds=1)) == 2
    later = tomorrow + timedelta(seconds=2)
    assert drain_all(clock=lambda: later).sent == 2
    assert Message.objects.filter(status=Status.SENT).count() == 5
    assert len(smtp_sink.messages) == 5
    usage = quotas.usage([tenant.id], now=now)
    assert usage == [{"tenant_id": tenant.id, "channel": "email", "limit": 3, "accepted": 0, "sent": 3, "pct": 100.0}]
    assert quotas.events()[(str(tenant.id), "deferred_daily", "email")] == 2


def test_plan_values_are_overridden_field_by_field(tenant, settings):
    settings.COMMS_TENANT_PLANS = {"default": {}, "pro": {"weight": 4, "max_bulk_size": 10,
                                                          "daily_messages": {"email": 100, "sms": 5}}}
    TenantQuota.objects.create(tenant=tenant, plan="pro", max_bulk_size=20, daily_messages={"sms": 50})
    got = quotas.limits(tenant.id)
    assert (got.weight, got.max_bulk_size, got.daily_messages) == (4, 20, {"email": 100, "sms": 50})


def test_quotas_fail_open_when_redis_is_unreachable(tenant, settings):
    """Budgets are not safety: with Redis gone the API accepts and the workers send (logged)."""
    from comms.devserver.embedded import free_port
    from comms.redis import redis_client

    TenantQuota.objects.create(tenant=tenant, daily_messages={"email": 1})
    now = timezone.now()
    good = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    redis_client.cache_clear()
    try:
        assert quotas.admit(tenant_id=tenant.id, channel="email", count=5, now=now).count == 0
        assert quotas.take_sends(tenant_id=tenant.id, channel="email", count=5, now=now) == 5
    finally:
        settings.REDIS_URL = good
        redis_client.cache_clear()
    assert quotas.take_sends(tenant_id=tenant.id, channel="email", count=5, now=now) == 1  # counting again

"""Conversions through POST /api/v1/messages/{id}/conversions: real sends (SMTP sink), counted once per
message in the metrics, the experiment's A/B figures and the engagement report; retries count once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.models import Scope
from delivery.models import Message
from tests.conftest import _client
from tests.tracking.test_metrics import campaign  # noqa: F401 (fixture: 40 sent A/B messages)
from tracking.models import CampaignMetrics, EventType, FirstEvent, MessageEvent
from tracking.services import metrics_reconcile, recount

pytestmark = pytest.mark.django_db


def _convert(api, message_id, body=None, **headers):
    return api.post(f"/api/v1/messages/{message_id}/conversions", body or {}, format="json", **headers)


def test_a_conversion_counts_once_per_message_and_a_retry_counts_once(api, admin_api, campaign):  # noqa: F811
    template, batch, messages = campaign
    first, other = messages[0], messages[1]
    made = _convert(api, first.id, {"value": "19.90", "currency": "eur"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["value"], body["currency"], body["first_conversion"], body["duplicate"]) == ("19.9", "EUR", True, False)
    retry = _convert(api, first.id, {"value": 19.9, "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert retry.status_code == 200 and retry.json()["id"] == body["id"] and retry.json()["duplicate"] is True
    clash = _convert(api, first.id, {"value": 25, "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="order-1")
    assert clash.status_code == 409 and clash.json()["code"] == "COMMS_IDEMPOTENCY_CONFLICT"
    again = _convert(api, first.id, {"idempotency_key": "order-2"})  # a second purchase: an event, not a count
    assert again.status_code == 201 and again.json()["first_conversion"] is False
    assert _convert(api, other.id).status_code == 201  # no key, no value: still a conversion

    assert MessageEvent.objects.filter(event_type=EventType.CONVERTED, message_id=first.id).count() == 2
    assert FirstEvent.objects.filter(event_type="converted").count() == 2
    version = str(template.active_version_id)
    for scope, key in [("batch", str(batch.id)), ("campaign", "spring"), ("template_version", version)]:
        row = CampaignMetrics.objects.get(scope=scope, key=key)
        assert row.converted_count == 2, scope
        assert recount(tenant_id=batch.tenant_id, scope=scope, key=key)["converted"] == 2
        assert metrics_reconcile(tenant_id=batch.tenant_id, scope=scope, key=key).converted_count == 2
    by_variant = {m.variant: 0 for m in messages}
    for m in (first, other):
        by_variant[m.variant] += 1
    results = admin_api.get(f"/api/v1/experiments/{template.template_key}/versions/1/results?metric=conversion").json()
    assert {v["key"]: v["successes"] for v in results["variants"]} == by_variant
    assert sum(v["trials"] for v in results["variants"]) == len(messages)

    report = admin_api.get("/api/v1/analytics/engagement", {"group_by": "day"}).json()
    [row] = report["rows"]
    assert (row["conversions"], row["unique_conversions"]) == (3, 2)


def test_bad_conversions_are_typed_errors_and_record_nothing(api, tenant, other_tenant, campaign):  # noqa: F811
    _, _, messages = campaign
    sent = messages[0]
    cases = [
        (uuid.uuid4(), {}, 404, "COMMS_NOT_FOUND"),
        ("not-a-uuid", {}, 404, "COMMS_NOT_FOUND"),
        (sent.id, {"value": -1, "currency": "EUR"}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"value": "lots", "currency": "EUR"}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"value": "NaN", "currency": "EUR"}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"value": 10}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"value": 10, "currency": "XXQ"}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"currency": "EUR"}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"value": [1]}, 400, "COMMS_CONVERSION_BAD_VALUE"),
        (sent.id, {"occurred_at": (timezone.now() + timedelta(days=1)).isoformat()}, 400, "COMMS_VALIDATION_ERROR"),
        (sent.id, {"occurred_at": (sent.sent_at - timedelta(days=1)).isoformat()}, 400, "COMMS_VALIDATION_ERROR"),
        (sent.id, {"occurred_at": "yesterday"}, 400, "COMMS_VALIDATION_ERROR"),
        (sent.id, {"colour": "red"}, 400, "COMMS_UNKNOWN_FIELD"),
    ]
    for message_id, body, status, code in cases:
        response = _convert(api, message_id, body)
        assert (response.status_code, response.json()["code"]) == (status, code), (body, response.json())
    # Another tenant's key does not find this tenant's message (the same 404 as an unknown id).
    outsider = _client(other_tenant, [Scope.MESSAGES_SEND])
    assert _convert(outsider, sent.id).json()["code"] == "COMMS_NOT_FOUND"
    reader = _client(tenant, [Scope.MESSAGES_READ])
    assert _convert(reader, sent.id).status_code == 403
    # Not sent yet, and outside the attribution window (COMMS_TRACKING_TOKEN_DAYS after the send).
    Message.objects.filter(pk=messages[1].pk).update(sent_at=None, status="queued")
    assert _convert(api, messages[1].id).json()["code"] == "COMMS_CONVERSION_NOT_SENT"
    Message.objects.filter(pk=messages[2].pk).update(sent_at=timezone.now() - timedelta(days=91))
    late = _convert(api, messages[2].id)
    assert (late.status_code, late.json()["code"]) == (422, "COMMS_CONVERSION_TOO_LATE")
    assert not MessageEvent.objects.filter(event_type=EventType.CONVERTED).exists()
    assert not CampaignMetrics.objects.filter(converted_count__gt=0).exists()

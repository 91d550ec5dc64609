"""Deciding an A/B campaign's winner before the wait ends (POST /campaigns/{id}/abtest/decide): by the
rules on opens counted through our pixel, or a forced variant against conversions recorded through the
conversions API; the rest is then sent exactly as after the automatic decision, and the act is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comms.campaigns.abtest import SEQ_REST
from comms.campaigns.models import Campaign
from comms.campaigns.services import campaigns_tick
from comms.models import AuditEntry, Scope
from delivery.models import Message
from delivery.services import drain_all
from tests.conftest import _client
from tests.comms.test_campaign_abtest import AB, N, _create, _open, _start, ab_template  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _decide(admin_api, campaign, body=None):
    return admin_api.post(f"/api/v1/campaigns/{campaign.pk}/abtest/decide", body or {}, format="json")


def _rest(campaign):
    return Message.objects.filter(batch_id__in=campaign.batches.filter(seq__gte=SEQ_REST).values("batch_id"))


def _send_rest(campaign, smtp_sink) -> set[str]:
    """The pump releases the rest at once (no wait left), the engine sends it; the subjects it got."""
    campaigns_tick()
    drain_all()
    rest = _rest(campaign)
    assert rest.count() and not rest.filter(sent_at__isnull=True).exists()
    return {mail["Subject"] for m in rest[:5] for mail in smtp_sink.by_comms_id()[str(m.id)]}


def test_decide_now_by_the_rules_sends_the_winner_to_the_rest(client, admin_api, ab_template, smtp_sink):  # noqa: F811
    campaign = _start(admin_api, AB)
    early = _decide(admin_api, campaign)  # the sample is queued, not sent: no evidence yet
    assert (early.status_code, early.json()["code"]) == (409, "COMMS_AB_NOT_READY")
    assert early.json()["details"]["sample_unsent"] > 0
    sent = drain_all().sent
    for m in Message.objects.filter(sent_at__isnull=False, variant="B"):
        _open(client, smtp_sink, m)  # B's subject works

    decided = _decide(admin_api, campaign)
    assert decided.status_code == 200, decided.json()
    body = decided.json()
    assert body["ab_test"]["winner"] == "B" and body["ab_test"]["winner_reason"] == "decided early: significant"
    assert body["ab_test"]["decided_by"] == "manual" and body["significant_winner"] == "B"
    audit = AuditEntry.objects.get(action="campaign.abtest_winner")
    assert audit.diff["manual"] is True and audit.diff["winner"] == "B" and audit.actor_label
    assert {v["key"]: v["successes"] for v in audit.diff["variants"]}["B"] > 0

    assert _send_rest(campaign, smtp_sink) == {"Subject B"}
    assert set(_rest(campaign).values_list("variant", flat=True)) == {"B"}
    assert Message.objects.filter(sent_at__isnull=False).count() == N
    assert sent < N
    again = _decide(admin_api, campaign, {"variant": "A", "reason": "changed my mind"})
    assert (again.status_code, again.json()["code"]) == (409, "COMMS_AB_DECIDED")
    campaigns_tick(now=timezone.now() + timedelta(hours=5))  # the automatic path leaves the decision alone
    assert Campaign.objects.get(pk=campaign.pk).ab_test["winner"] == "B"
    assert AuditEntry.objects.filter(action="campaign.abtest_winner").count() == 1


def test_force_a_variant_with_a_reason_against_conversions(api, admin_api, ab_template, smtp_sink):  # noqa: F811
    campaign = _start(admin_api, {**AB, "metric": "conversion"})
    drain_all()
    converted = list(Message.objects.filter(sent_at__isnull=False, variant="A"))
    for m in converted:  # A converts; recorded through the conversions API, a retry counting once
        for _ in range(2):
            made = api.post(f"/api/v1/messages/{m.id}/conversions", {"value": 10, "currency": "EUR"},
                            format="json", HTTP_IDEMPOTENCY_KEY=f"order-{m.id}")
            assert made.status_code in (200, 201)
    stats = admin_api.get(f"/api/v1/campaigns/{campaign.pk}/abtest").json()
    assert stats["metric"] == "conversion"
    metrics = admin_api.get(f"/api/v1/campaigns/{campaign.pk}").json()["metrics"]
    sample = Message.objects.filter(sent_at__isnull=False).count()
    assert metrics["converted"] == len(converted)
    assert metrics["rates"]["conversion_rate"] == round(len(converted) * 100.0 / sample, 2)
    assert {v["key"]: v["successes"] for v in stats["variants"]} == {"A": len(converted), "B": 0}

    unreasoned = _decide(admin_api, campaign, {"variant": "B"})
    assert (unreasoned.status_code, unreasoned.json()["code"]) == (400, "COMMS_VALIDATION_ERROR")
    unknown = _decide(admin_api, campaign, {"variant": "Z", "reason": "x"})
    assert unknown.json()["code"] == "COMMS_AB_UNKNOWN_VARIANT"
    assert _decide(admin_api, campaign, {"variant": 3, "reason": "x"}).status_code == 400
    assert _decide(admin_api, campaign, {"winner": "B"}).json()["code"] == "COMMS_UNKNOWN_FIELD"
    assert "winner" not in Campaign.objects.get(pk=campaign.pk).ab_test  # nothing decided by a refusal

    forced = _decide(admin_api, campaign, {"variant": "B", "reason": "brand team prefers B"})
    assert forced.status_code == 200 and forced.json()["ab_test"]["winner"] == "B"
    assert forced.json()["ab_test"]["winner_reason"] == "forced: brand team prefers B"
    audit = AuditEntry.objects.get(action="campaign.abtest_winner")
    assert audit.reason == "forced: brand team prefers B" and audit.diff["metric"] == "conversion"
    assert {v["key"]: v["successes"] for v in audit.diff["variants"]} == {"A": len(converted), "B": 0}
    assert _send_rest(campaign, smtp_sink) == {"Subject B"}


def test_decide_is_refused_without_a_test_or_a_started_sample(admin_api, other_tenant, ab_template):  # noqa: F811
    plain = admin_api.post("/api/v1/campaigns", {
        "name": "plain", "channels": ["email"], "template": "promo",
        "audience": {"recipients": ["u1"]}}, format="json").json()
    no_test = admin_api.post(f"/api/v1/campaigns/{plain['id']}/abtest/decide", {}, format="json")
    assert (no_test.status_code, no_test.json()["code"]) == (409, "COMMS_AB_NO_TEST")
    draft = Campaign.objects.get(pk=_create(admin_api, AB).json()["id"])
    assert _decide(admin_api, draft).json()["code"] == "COMMS_AB_NOT_READY"
    assert admin_api.post("/api/v1/campaigns/nope/abtest/decide", {}, format="json").status_code == 404
    outsider = _client(other_tenant, [Scope.ADMIN])
    assert _decide(outsider, draft).json()["code"] == "COMMS_NOT_FOUND"
    Campaign.objects.filter(pk=draft.pk).update(state=Campaign.State.CANCELLED)
    assert _decide(admin_api, draft).json()["code"] == "COMMS_CAMPAIGN_STATE"

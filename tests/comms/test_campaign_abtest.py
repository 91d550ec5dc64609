"""Sample-then-winner A/B campaigns, end to end: real sends into the SMTP sink, opens through our own
tracking pixel, the wait passed by a simulated clock, the winner sent to the rest, audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from comms.models import AuditEntry as AuditLog
from comms.campaigns.abtest import SEQ_REST, campaign_abtest_decide
from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.models import Campaign
from comms.campaigns.services import campaigns_tick
from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from templates_app.models import TemplateVersion
from tests.comms.router_fixtures import live_template

pytestmark = pytest.mark.django_db
N = 200
AB = {"sample_percent": 15, "wait_hours": 4, "metric": "open", "min_sample": 5, "mde": 0.4}


@pytest.fixture
def ab_template(tenant):
    template = live_template(tenant, "promo", subject="Hello", body_html="<p>Sale</p>", category="marketing",
                             channels=["email"])
    TemplateVersion.objects.filter(template=template).update(experiment={"name": "subject", "variants": [
        {"key": "A", "weight": 50, "subject": "Subject A"}, {"key": "B", "weight": 50, "subject": "Subject B"}]})
    Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"u{i}", email=f"u{i}@example.com")
                                   for i in range(N)])
    return template


def _create(admin_api, ab_test: dict):
    return admin_api.post("/api/v1/campaigns", {
        "name": "AB sale", "channels": ["email"], "template": "promo", "ab_test": ab_test,
        "audience": {"recipients": [f"u{i}" for i in range(N)]}}, format="json")


def _start(admin_api, ab_test: dict) -> Campaign:
    created = _create(admin_api, ab_test)
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    assert admin_api.post(f"/api/v1/campaigns/{cid}/schedule").status_code == 200
    campaigns_tick()
    campaign_fanout(campaign_id=cid)
    return Campaign.objects.get(pk=cid)


def _open(client, smtp_sink, message: Message) -> None:
    mail = smtp_sink.by_comms_id()[str(message.id)][0]
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    pixel = re.search(r'/o/([^"]+)[.]gif', html).group(1)
    assert client.get(f"/o/{pixel}.gif").status_code == 200


def test_sample_then_winner_sends_the_winner_to_the_rest(client, admin_api, tenant, ab_template, smtp_sink):
    campaign = _start(admin_api, AB)
    sent = drain_all().sent
    sample = list(Message.objects.filter(sent_at__isnull=False))
    assert sent == len(sample) and 0.2 * N < sent < 0.42 * N  # ~30 % (15 % per variant), not everyone
    assert {m.variant for m in sample} == {"A", "B"}
    assert Message.objects.filter(sent_at__isnull=True).count() == N - sent  # the rest is held
    for m in sample:
        if m.variant == "B":  # B's subject works: every B recipient opens, no A recipient does
            _open(client, smtp_sink, m)

    stats = admin_api.get(f"/api/v1/campaigns/{campaign.pk}/abtest").json()
    by = {v["key"]: v for v in stats["variants"]}
    assert by["B"]["rate"] == 1.0 and by["A"]["rate"] == 0.0 and by["B"]["prob_best"] > 0.99
    assert by["B"]["p_value"] < 0.001 and stats["significant_winner"] == "B"

    campaigns_tick(now=timezone.now() + timedelta(hours=1))  # before the wait is over: nothing decided
    assert "winner" not in Campaign.objects.get(pk=campaign.pk).ab_test
    later = timezone.now() + timedelta(hours=4, minutes=1)
    campaigns_tick(now=later)  # decides and gives the rest its slots
    campaign.refresh_from_db()
    assert campaign.ab_test["winner"] == "B" and campaign.ab_test["winner_reason"] == "significant"
    audit = AuditLog.objects.get(action="campaign.abtest_winner")
    assert audit.diff["winner"] == "B" and audit.diff["rest_chunks"] >= 1
    campaigns_tick(now=later)  # the pump releases the rest
    assert drain_all(clock=lambda: later).sent == N - sent
    rest = Message.objects.filter(batch_id__in=campaign.batches.filter(seq__gte=SEQ_REST).values("batch_id"))
    assert rest.count() == N - sent and set(rest.values_list("variant", flat=True)) == {"B"}
    subjects = {mail["Subject"] for m in rest[:5] for mail in smtp_sink.by_comms_id()[str(m.id)]}
    assert subjects == {"Subject B"}
    assert campaign_abtest_decide(campaign_id=campaign.pk, now=later)["winner"] == "B"  # idempotent
    assert AuditLog.objects.filter(action="campaign.abtest_winner").count() == 1


def test_no_significant_winner_falls_back_to_the_default(admin_api, ab_template, smtp_sink):
    campaign = _start(admin_api, {**AB, "default_variant": "B"})
    drain_all()  # nobody opens anything
    campaigns_tick(now=timezone.now() + timedelta(hours=5))
    campaign.refresh_from_db()
    assert campaign.ab_test["winner"] == "B" and campaign.ab_test["winner_reason"] == "no significant difference"


def test_minimum_sample_not_reached_uses_the_control(admin_api, ab_template, smtp_sink):
    campaign = _start(admin_api, {**AB, "min_sample": 1000})
    drain_all()
    campaigns_tick(now=timezone.now() + timedelta(hours=5))
    campaign.refresh_from_db()
    assert campaign.ab_test["winner"] == "A" and "minimum sample" in campaign.ab_test["winner_reason"]


@pytest.mark.parametrize("bad, code", [
    ({"sample_percent": 60}, "COMMS_AB_BAD_SAMPLE"),
    ({"sample_percent": 0}, "COMMS_AB_BAD_SAMPLE"),
    ({"wait_hours": 1000}, "COMMS_AB_WAIT_TOO_LONG"),
    ({"default_variant": "Z"}, "COMMS_AB_UNKNOWN_VARIANT"),
    ({"metric": "revenue"}, "COMMS_AB_BAD_METRIC"),
    ({"sample_percent": "lots"}, "COMMS_VALIDATION_ERROR"),
    ({"colour": "red"}, "COMMS_UNKNOWN_FIELD"),
])
def test_bad_ab_settings_are_typed_errors(admin_api, ab_template, bad, code):
    response = _create(admin_api, {**AB, **bad})
    assert response.status_code == 400 and response.json()["code"] == code
    assert not Campaign.objects.exists()


def test_experiment_results_api_and_bad_input(admin_api, tenant, ab_template):
    url = "/api/v1/experiments/promo/versions/1/results"
    body = admin_api.get(url).json()
    assert [v["key"] for v in body["variants"]] == ["A", "B"] and body["variants"][0]["trials"] == 0
    assert admin_api.get(url + "?control=Z").json()["code"] == "COMMS_AB_UNKNOWN_VARIANT"
    assert admin_api.get(url + "?metric=revenue").json()["code"] == "COMMS_AB_BAD_METRIC"
    assert admin_api.get(url + "?mde=2").json()["code"] == "COMMS_VALIDATION_ERROR"
    assert admin_api.get("/api/v1/experiments/promo/versions/9/results").status_code == 404

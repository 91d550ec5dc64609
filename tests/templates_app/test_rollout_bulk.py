"""Staged rollouts reach bulk sends and campaigns (issue 20 item 4): the worker splits a batch pinned to
the old version by the same sticky point as single sends, records each row's version for the guardrails,
costs one query per claimed batch, and follows a rollback or a completion that happens mid-campaign."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.services import campaign_create, campaign_schedule, campaigns_tick
from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from templates_app import rollout as service
from templates_app import services
from templates_app.rollout_guard import rollout_figures, rollouts_tick
from tests.templates_app.fixtures import SCHEMA, variables
from tests.templates_app.test_rollout import two_versions  # noqa: F401 — the shared fixture

pytestmark = pytest.mark.django_db


def _bulk(api, template_key: str, addresses: list[str]) -> None:
    r = api.post("/api/v1/messages/bulk", {"channel": "email", "template": template_key,
                                           "recipients": [{"to": a, "variables": variables()} for a in addresses]},
                 format="json")
    assert r.status_code == 202, r.content


def _predicted(v1, keys: list[str]) -> dict[str, int]:
    """What the single-send path would give each key right now (the sticky prediction)."""
    return {k: service.rollout_pick(version=v1, recipient_key=k).pk for k in keys}


def test_bulk_send_during_a_30_percent_rollout_follows_the_sticky_split(two_versions, approver, api, smtp_sink):
    template, v1, v2 = two_versions
    rollout = service.rollout_start(template=template, version=v2, percent=30, actor=approver)
    addresses = [f"bulk{i}@example.com" for i in range(60)]
    predicted = _predicted(v1, addresses)
    assert 8 <= sum(v == v2.pk for v in predicted.values()) <= 32  # ~30 % of 60
    _bulk(api, template.template_key, addresses)
    assert drain_all().sent == 60
    got = dict(Message.objects.values_list("recipient_address", "template_version_id"))
    assert got == predicted  # each row records the version it was sent with
    sent = {m["To"]: m for m in smtp_sink.messages}  # what the recipients got (bulk rows keep no copy)
    assert {a: m["Subject"].startswith("v2:") for a, m in sent.items()} == {
        a: v == v2.pk for a, v in predicted.items()}
    assert {a: m["X-Template-Version"] for a, m in sent.items()} == {
        a: "2" if v == v2.pk else "1" for a, v in predicted.items()}
    figures = rollout_figures(rollout)["metrics"]["bounce"]  # the guardrails see both groups
    assert figures["new_volume"] == sum(v == v2.pk for v in predicted.values())
    assert figures["new_volume"] + figures["old_volume"] == 60


def test_bulk_send_without_a_rollout_is_unchanged_and_costs_one_lookup_per_claimed_batch(
        two_versions, api, smtp_sink, settings):
    template, v1, v2 = two_versions
    settings.COMMS_P2_BATCH = settings.COMMS_P3_BATCH = 10  # several claims, whatever the priority used
    _bulk(api, template.template_key, [f"plain{i}@example.com" for i in range(40)])
    with CaptureQueriesContext(connection) as queries:
        stats = drain_all()
    assert stats.sent == 40
    assert set(Message.objects.values_list("template_version_id", flat=True)) == {v1.pk}
    assert not any(m["Subject"].startswith("v2:") for m in smtp_sink.messages)
    lookups = [q for q in queries.captured_queries if "templates_app_templaterollout" in q["sql"]]
    assert 1 <= len(lookups) <= stats.batches < 40  # per claimed batch, never per recipient


def test_bulk_rows_pinned_before_a_completion_follow_it_to_100_percent(two_versions, approver, api, smtp_sink):
    template, v1, v2 = two_versions
    rollout = service.rollout_start(template=template, version=v2, percent=30, actor=approver)
    _bulk(api, template.template_key, [f"late{i}@example.com" for i in range(20)])  # pinned to v1
    service.rollout_advance(rollout=rollout, actor=approver, percent=100)  # completes before the worker runs
    assert drain_all().sent == 20
    assert set(Message.objects.values_list("template_version_id", flat=True)) == {v2.pk}


@pytest.fixture
def audience(tenant):
    Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"c{i}", email=f"c{i}@example.com")
                                   for i in range(60)])
    return [f"c{i}" for i in range(60)]


def test_campaign_during_a_rollout_splits_then_a_rollback_sends_the_rest_with_the_old_version(
        two_versions, approver, tenant, audience, smtp_sink):
    template, v1, v2 = two_versions
    rollout = service.rollout_start(template=template, version=v2, percent=30, actor=approver)
    t0 = timezone.now()
    campaign = campaign_create(tenant=tenant, data={
        "name": "Rollout", "channels": ["email"], "template": template.template_key, "variables": variables(),
        "throttle_per_minute": 20, "audience": {"recipients": audience}})
    campaign_schedule(tenant=tenant, campaign_id=campaign.id, now=t0)
    campaigns_tick(now=t0)
    assert campaign_fanout(campaign_id=campaign.id, now_fn=lambda: t0).rows == 60  # every row written now, on v1
    assert set(Message.objects.values_list("template_version_id", flat=True)) == {v1.pk}
    predicted = _predicted(v1, audience)  # directory rows are keyed by external id, as single sends
    assert drain_all(clock=lambda: t0).sent == 20  # the first chunk
    first = {m.recipient.external_id: m.template_version_id
             for m in Message.objects.filter(status="sent").select_related("recipient")}
    assert first == {k: predicted[k] for k in first} and v2.pk in first.values() and v1.pk in first.values()
    service.rollout_rollback(rollout=rollout, actor=approver, reason="mid-campaign")
    later = t0 + timedelta(seconds=61)
    campaigns_tick(now=later)
    assert drain_all(clock=lambda: later).sent == 20  # the second chunk, after the rollback
    after = Message.objects.filter(status="sent", sent_at__isnull=False).exclude(
        recipient__external_id__in=first).select_related("recipient")
    assert len(after) == 20 and {m.template_version_id for m in after} == {v1.pk}
    to_after = {m.recipient_address for m in after}
    assert len(smtp_sink.messages) == 40
    assert not any(m["Subject"].startswith("v2:") for m in smtp_sink.messages if m["To"] in to_after)
    assert Message.objects.filter(template_version=v2).count() == sum(v == v2.pk for v in first.values())


def test_bulk_rows_that_cannot_render_the_new_version_roll_it_back(two_versions, approver, editor, api, smtp_sink):
    """A new version needing a variable the bulk caller does not send: its rows fail (recorded under v3),
    are counted once each, and the beat rolls back at a 100 % render-error rate."""
    template, v1, _ = two_versions
    draft = services.template_edit(template=template, actor=editor, user=editor, data={
        "variables_schema": {**SCHEMA, "required": [*SCHEMA["required"], "coupon"],
                             "properties": {**SCHEMA["properties"], "coupon": {"type": "string"}}},
        "sample_variables": variables(coupon="X"), "locales": [{"locale": "en-US", "subject": "{{coupon}}",
                                                          "body_html": "<p>{{coupon}}</p>", "sms_text": "{{coupon}}",
                                                          "push_title": "c", "push_body": "{{coupon}}",
                                                          "in_app_content": {"title": "c", "body": "{{coupon}}"}}]})
    services.version_submit(version=draft, actor=editor, user=editor)
    services.version_approve(version=draft, user=approver, activate=False)
    rollout = service.rollout_start(template=template, version=draft, percent=50, actor=approver, min_volume=5)
    addresses = [f"coupon{i}@example.com" for i in range(30)]
    predicted = _predicted(v1, addresses)
    _bulk(api, template.template_key, addresses)  # validated against v1's schema: accepted
    drain_all()
    failed = dict(Message.objects.filter(status="failed").values_list("recipient_address", "template_version_id"))
    assert failed == {a: v for a, v in predicted.items() if v == draft.pk} and len(failed) >= 5
    assert set(Message.objects.filter(status="failed").values_list("failure_code", flat=True)) == {
        "COMMS_TEMPLATE_MISSING_VAR"}
    assert Message.objects.filter(status="sent", template_version=v1).count() == 30 - len(failed)
    rollouts_tick()
    rollout.refresh_from_db()
    assert rollout.state == "rolled_back" and rollout.rollback_reason["metric"] == "render_error"
    assert rollout.rollback_reason["new_rate"] == 100.0 and rollout.rollback_reason["new_volume"] == len(failed)

"""CampaignMetrics kept incrementally equal a recount from raw rows; rolling-rate alerts pause a variant."""

from __future__ import annotations

import json
import re

import pytest

from delivery.models import Message, MessageBatch
from delivery.services import drain_all
from templates_app.models import TemplateVersion
from tests.templates_app.fixtures import variables
from tests.webhooks.signers import SendGridSigner
from tracking.models import CampaignMetrics, DeliverabilityAlert
from tracking.services import alerts_check, metrics_reconcile, recount
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db

EXPERIMENT = {"name": "subject-test", "variants": [
    {"key": "A", "weight": 50, "subject": "A: order {{order.id}}"},
    {"key": "B", "weight": 50, "subject": "B: order {{order.id}}"}]}


@pytest.fixture
def campaign(api, tenant, make_live, smtp_sink):
    template = make_live(tenant, experiment=EXPERIMENT, category="marketing")
    response = api.post("/api/v1/messages/bulk", {
        "channel": "email", "template": template.template_key, "category": "marketing",
        "metadata": {"campaign_id": "spring"},
        "recipients": [{"to": f"user{i}@example.com", "variables": variables(1)} for i in range(40)]}, format="json")
    assert response.status_code in (200, 201, 202), response.content
    drain_all()
    batch = MessageBatch.objects.get()
    messages = list(Message.objects.filter(batch=batch).order_by("recipient_address"))
    assert {m.status for m in messages} == {"sent"} and {m.variant for m in messages} == {"A", "B"}
    return template, batch, messages


def _sendgrid_post(client, sg, events):
    sg.sign(json.dumps(events)).send(client)


def test_incremental_metrics_equal_a_recount_from_raw_events(client, settings, campaign, smtp_sink):
    template, batch, messages = campaign
    sg = SendGridSigner(settings)
    events = []
    for i, m in enumerate(messages):
        one = lambda kind, **kw: json.loads(sg.events(ref=m.provider_ref, address=m.recipient_address, event=kind,
                                                      **kw))[0]
        if i % 10 == 0:
            events.append(one("bounce"))
        else:
            events.append(one("delivered"))
            if i % 3 == 0:
                events += [one("open"), one("open"), one("click")]  # two opens: one unique open
            if i % 7 == 0:
                events.append(one("spamreport"))
            if i == 5:
                events.append(one("unsubscribe"))
    duplicate = events[3]
    _sendgrid_post(client, sg, events)
    _sendgrid_post(client, sg, [duplicate] * 5)  # redeliveries change nothing
    webhooks_process_pending()
    # our own open pixel for one message too
    mail = smtp_sink.by_comms_id()[str(messages[1].id)][0]
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    pixel = re.search(r"/o/([^\"]+)\.gif", html).group(1)
    client.get(f"/o/{pixel}.gif")

    version_id = str(template.active_version_id)
    scopes = [("batch", str(batch.id)), ("campaign", "spring"), ("template_version", version_id),
              ("variant", f"{version_id}:A"), ("variant", f"{version_id}:B")]
    for scope, key in scopes:
        live = CampaignMetrics.objects.get(scope=scope, key=key)
        exact = recount(tenant_id=batch.tenant_id, scope=scope, key=key)
        for name in ("delivered", "bounced", "hard_bounced", "opened", "clicked", "unsubscribed", "complained"):
            assert getattr(live, f"{name}_count") == exact[name], (scope, name)
    row = CampaignMetrics.objects.get(scope="batch", key=str(batch.id))
    assert (row.delivered_count, row.bounced_count, row.clicked_count) == (36, 4, 12)
    assert row.opened_count == 13  # 12 from SendGrid + our own pixel on a message without one
    assert row.complained_count == 5 and row.unsubscribed_count == 1
    reconciled = metrics_reconcile(tenant_id=batch.tenant_id, scope="batch", key=str(batch.id))
    assert reconciled.sent_count == 40 and reconciled.completed_at is not None
    assert reconciled.delivery_rate == 90.0 and reconciled.open_rate == round(13 * 100 / 36, 2)
    assert reconciled.campaign_name == template.template_key


def test_breaching_variant_is_paused_and_alerted(client, settings, campaign, caplog):
    template, batch, messages = campaign
    settings.COMMS_ALERT_MIN_SENT = 10
    sg = SendGridSigner(settings)
    a = [m for m in messages if m.variant == "A"]
    b = [m for m in messages if m.variant == "B"]
    events = [json.loads(sg.events(ref=a[0].provider_ref, address=a[0].recipient_address, event="bounce"))[0]]
    events += [json.loads(sg.events(ref=m.provider_ref, address=m.recipient_address, event="delivered"))[0]
               for m in b]
    _sendgrid_post(client, sg, events)
    webhooks_process_pending()
    with caplog.at_level("WARNING"):
        opened = alerts_check()
    subjects = {(x.subject, x.metric) for x in opened}
    assert {("variant", "hard_bounce"), ("provider", "hard_bounce"), ("sending_domain", "hard_bounce")} <= subjects
    assert DeliverabilityAlert.objects.get(subject="sending_domain").key == "comms.localhost"
    variant_alert = DeliverabilityAlert.objects.get(subject="variant")
    assert variant_alert.key.endswith(":A") and variant_alert.action == "variant paused"
    assert variant_alert.rate == pytest.approx(100.0 / len(a)) and variant_alert.threshold == 0.3
    assert "deliverability alert" in caplog.text
    version = TemplateVersion.objects.get(pk=template.active_version_id)
    weights = {v["key"]: v["weight"] for v in version.experiment["variants"]}
    assert weights == {"A": 0, "B": 50}
    assert version.experiment["variants"][0]["paused"]["weight"] == 50
    assert alerts_check() == []  # still breaching: the open alert is updated, not raised again
    # new sends only get the remaining variant
    from templates_app.services.render import pick_variant

    assert {pick_variant(version, f"someone{i}")["key"] for i in range(30)} == {"B"}


def test_complaint_rate_alert_resolves_when_it_recovers(client, settings, campaign):
    _, _, messages = campaign
    settings.COMMS_ALERT_MIN_SENT = 10
    sg = SendGridSigner(settings)
    m = messages[0]
    _sendgrid_post(client, sg, [json.loads(sg.events(ref=m.provider_ref, address=m.recipient_address,
                                                     event="spamreport"))[0]])
    webhooks_process_pending()
    alerts_check()
    alert = DeliverabilityAlert.objects.get(subject="provider", metric="complaint")
    assert alert.resolved_at is None and alert.count == 1
    settings.COMMS_ALERT_COMPLAINT_PCT = 5.0  # the operator raises the bar: 1 of 40 is 2.5 %
    alerts_check()
    alert.refresh_from_db()
    assert alert.resolved_at is not None


@pytest.mark.django_db
def test_a_campaign_recount_reads_only_the_campaigns_messages_through_indexes(tenant):
    """The hourly reconcile must not scan the whole queue table for each campaign: its messages are
    found through the batch index (campaign chunks) and the partial tag index (single sends)."""
    from django.db import connection

    from delivery.services import SendSpec, message_bulk_enqueue, message_enqueue
    from tracking.services.metrics import _message_filter

    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="s", body="b",
                                                      metadata={"campaign_id": "spring"}),
                         recipients=[{"to": f"u{i}@example.com"} for i in range(5)])
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="single@example.com", subject="s", body="b",
                                                 metadata={"campaign_id": "spring"}))
    message_enqueue(tenant=tenant, spec=SendSpec(channel="email", to="other@example.com", subject="s", body="b"))
    messages = Message.objects.filter(_message_filter(CampaignMetrics.Scope.CAMPAIGN, "spring"), tenant_id=tenant.id)
    assert messages.count() == 6
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # what the planner picks on a big table
    # (without the tenant condition: on five rows the planner would rather read the tenant's index)
    plan = Message.objects.filter(_message_filter(CampaignMetrics.Scope.CAMPAIGN, "spring")).explain()
    assert "message_campaign_tag_idx" in plan and "message_batch_idx" in plan, plan

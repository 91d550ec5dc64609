"""A campaign's CampaignMetrics: tracking's incremental counters keyed by the campaign, equal to a
recount from raw events, in the API detail and on the admin change page."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model

from comms.campaigns.fanout import campaign_fanout
from comms.campaigns.services import campaigns_tick
from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from tests.comms.router_fixtures import live_template
from tests.webhooks.signers import SendGridSigner
from tracking.models import CampaignMetrics
from tracking.services import metrics_reconcile, recount
from webhooks.services import webhooks_process_pending

pytestmark = pytest.mark.django_db
COUNTED = ("sent", "delivered", "bounced", "hard_bounced", "opened", "clicked", "unsubscribed", "complained")


@pytest.fixture
def sent_campaign(admin_api, tenant, smtp_sink):
    live_template(tenant, "promo", subject="Hello {{name}}", body_html="<p>Sale for {{name}}</p>",
                  schema={"type": "object", "properties": {"name": {"type": "string"}}}, sample={"name": "x"},
                  category="marketing")
    Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"u{i}", email=f"u{i}@example.com")
                                   for i in range(12)])
    created = admin_api.post("/api/v1/campaigns", {
        "name": "Spring sale", "channels": ["email"], "template": "promo", "variables": {"name": "friend"},
        "audience": {"recipients": [f"u{i}" for i in range(12)]}}, format="json")
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    admin_api.post(f"/api/v1/campaigns/{cid}/schedule")
    campaigns_tick()
    campaign_fanout(campaign_id=cid)
    assert drain_all().sent == 12
    # a direct send outside the campaign must not count towards it
    admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": "u0", "template": "promo",
                                        "variables": {"name": "x"}}, format="json")
    drain_all()
    return cid, list(Message.objects.filter(batch__isnull=False).order_by("recipient_address"))


def test_campaign_metrics_are_exact_in_the_api_and_admin(client, admin_api, settings, tenant, sent_campaign,
                                                         smtp_sink):
    cid, messages = sent_campaign
    sg = SendGridSigner(settings)
    events = []
    for i, m in enumerate(messages):
        one = lambda kind: json.loads(sg.events(ref=m.provider_ref, address=m.recipient_address, event=kind))[0]
        if i < 2:
            events.append(one("bounce"))
            continue
        events.append(one("delivered"))
        if i % 2 == 0:
            events += [one("open"), one("open"), one("click")]  # two opens count as one unique open
        if i == 3:
            events.append(one("spamreport"))
        if i == 5:
            events.append(one("unsubscribe"))
    sg.sign(json.dumps(events)).send(client)
    sg.sign(json.dumps(events[2:4])).send(client)  # a redelivery changes nothing
    webhooks_process_pending()
    mail = smtp_sink.by_comms_id()[str(messages[3].id)][0]  # our own pixel, on a message SendGrid saw no open for
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    pixel = re.search(r'/o/([^"]+)[.]gif', html).group(1)
    assert client.get(f"/o/{pixel}.gif").status_code == 200

    metrics = admin_api.get(f"/api/v1/campaigns/{cid}").json()["metrics"]
    exact = recount(tenant_id=tenant.pk, scope="campaign", key=cid)
    assert {k: metrics[k] for k in COUNTED} == {k: exact[k] for k in COUNTED}
    assert (metrics["sent"], metrics["delivered"], metrics["bounced"], metrics["opened"], metrics["clicked"]) == (
        12, 10, 2, 6, 5)
    assert (metrics["complained"], metrics["unsubscribed"]) == (1, 1)
    assert metrics["rates"]["open_rate"] == 60.0 and metrics["rates"]["bounce_rate"] == round(200 / 12, 2)
    assert metrics["reconciled_at"] is None  # live counters, before any reconcile pass

    row = metrics_reconcile(tenant_id=tenant.pk, scope="campaign", key=cid)
    assert {k: getattr(row, f"{k}_count") for k in COUNTED} == {k: exact[k] for k in COUNTED}
    assert row.campaign_name == "Spring sale"
    assert admin_api.get(f"/api/v1/campaigns/{cid}").json()["metrics"]["reconciled_at"] is not None
    assert CampaignMetrics.objects.filter(scope="campaign").count() == 1

    get_user_model().objects.create_superuser("boss", "boss@example.com", "boss-secret-pw")
    client.force_login(get_user_model().objects.get(username="boss"))
    page = client.get(f"/admin/campaigns/campaign/{cid}/change/").content.decode()
    shown = re.search(r'<span id="campaign-metrics">(.*?)</span>', page).group(1)
    assert "sent: <b>12</b>" in shown and "opened: <b>6</b>" in shown and "bounced: <b>2</b>" in shown

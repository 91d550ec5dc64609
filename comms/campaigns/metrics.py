"""A campaign's engagement figures: tracking's CampaignMetrics row for scope 'campaign', key = its id.

The fan-out writes ``{"campaign_id", "campaign_name"}`` into every batch's metadata, so tracking's
``count_event`` bumps the campaign row as provider events and our own opens/clicks arrive (unique
per message, the same FirstEvent rule its recount uses). ``sent`` is not an event: like tracking's
recount it is the campaign's messages with a ``sent_at``, counted here from the rows (one indexed
query over the campaign's batches) so it is exact between reconcile passes.
"""

from __future__ import annotations

from typing import Any

from comms.campaigns.models import Campaign
from delivery.models import Message
from tracking.models import CampaignMetrics

RATES = ("delivery_rate", "open_rate", "click_rate", "bounce_rate", "complaint_rate", "conversion_rate")


def campaign_metrics_row(campaign: Campaign) -> CampaignMetrics:
    """The stored row (unsaved and all zero before the first event), with ``sent_count`` counted live."""
    row = CampaignMetrics.objects.filter(tenant_id=campaign.tenant_id, scope=CampaignMetrics.Scope.CAMPAIGN,
                                         key=str(campaign.id)).first()
    if row is None:
        row = CampaignMetrics(tenant_id=campaign.tenant_id, scope=CampaignMetrics.Scope.CAMPAIGN,
                              key=str(campaign.id), campaign_name=campaign.name)
    batch_ids = list(campaign.batches.values_list("batch_id", flat=True))
    row.sent_count = (Message.objects.filter(batch_id__in=batch_ids, sent_at__isnull=False).count()
                      if batch_ids else 0)
    return row


def campaign_metrics(campaign: Campaign) -> dict[str, Any]:
    """Counts (unique messages per kind) and rates in percent, as the API and the admin show them."""
    row = campaign_metrics_row(campaign)
    return {
        **{name: getattr(row, f"{name}_count") for name in CampaignMetrics.COUNTERS},
        "rates": {name: getattr(row, name) for name in RATES},
        "reconciled_at": row.reconciled_at,
    }

"""Thin Celery wrappers for campaign fan-out and cleanup, and their on-commit dispatch.

The task names keep the ``comms.tasks.*`` form they had before the campaigns became an app of their
own, so tasks already queued in Redis and any routing by name keep working.
"""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from comms.campaigns import fanout
from comms.campaigns.models import Campaign


@shared_task(name="comms.tasks.campaign_fanout", acks_late=True, ignore_result=True)
def campaign_fanout(campaign_id: str) -> dict:
    return vars(fanout.campaign_fanout(campaign_id=campaign_id))


@shared_task(name="comms.tasks.campaign_cleanup", acks_late=True, ignore_result=True)
def campaign_cleanup(campaign_id: str) -> int:
    return fanout.campaign_cleanup(campaign_id=campaign_id)


def dispatch_fanout(campaign: Campaign) -> None:
    """Queue the fan-out on p3 (the bulk pool) once the transaction that scheduled it commits."""
    campaign_id = str(campaign.id)
    transaction.on_commit(lambda: campaign_fanout.apply_async(args=[campaign_id], queue="p3"))


def dispatch_cleanup(campaign: Campaign) -> None:
    """Queue the cleanup of a cancelled campaign's held rows once the cancel commits."""
    campaign_id = str(campaign.id)
    transaction.on_commit(lambda: campaign_cleanup.apply_async(args=[campaign_id], queue="p3"))

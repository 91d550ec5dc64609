"""Thin Celery wrappers around webhooks and tracking services."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from tracking.services import alerts_check, metrics_reconcile_recent
from webhooks.services import webhooks_process_batch, webhooks_sweep


@shared_task(name="webhooks.tasks.process", ignore_result=True)
def process(webhook_id: int) -> str:
    """Its own row (if still due) and, in the same batch, whatever else was received meanwhile: under
    load one task applies hundreds of rows and the tasks of those rows find nothing left to do."""
    results = webhooks_process_batch(ids=[webhook_id])
    for pk, result in results.items():
        if result.retry_in is not None:  # the message is not marked sent yet: look again later
            process.apply_async((pk,), countdown=result.retry_in)
    own = results.get(webhook_id)
    return own.state if own is not None else "done elsewhere"


@shared_task(name="webhooks.tasks.sweep", acks_late=False, ignore_result=True)
def sweep() -> int:
    return webhooks_sweep()


@shared_task(name="webhooks.tasks.tracking_periodic", acks_late=False, ignore_result=True)
def tracking_periodic() -> dict:
    """Reconcile recently touched metrics and check the rolling deliverability rates."""
    reconciled = metrics_reconcile_recent(since=timezone.now() - timedelta(hours=1))
    return {"reconciled": reconciled, "alerts": len(alerts_check())}

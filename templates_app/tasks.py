"""Thin Celery wrappers around templates_app services."""

from celery import shared_task

from templates_app.rollout_guard import rollouts_tick as tick_service


@shared_task(name="templates_app.tasks.rollouts_tick", acks_late=False, ignore_result=True)
def rollouts_tick() -> dict:
    """Beat: judge every open staged rollout's guardrails and take its due scheduled step."""
    return tick_service()

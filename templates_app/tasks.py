"""Thin Celery wrappers for template work that is too slow for a request or runs on beat."""

from celery import shared_task

from templates_app.rollout_guard import rollouts_tick as tick_service
from templates_app.services.previews import version_previews_store


@shared_task(name="templates_app.tasks.version_previews_render", acks_late=False, ignore_result=True)
def version_previews_render(version_id: int) -> int:
    """Chromium screenshots of a submitted version, stored with its approval request."""
    return version_previews_store(version_id=version_id)


@shared_task(name="templates_app.tasks.rollouts_tick", acks_late=False, ignore_result=True)
def rollouts_tick() -> dict:
    """Beat: judge every open staged rollout's guardrails and take its due scheduled step."""
    return tick_service()

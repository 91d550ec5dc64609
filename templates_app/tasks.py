"""Thin Celery wrappers for template work that is too slow for a request."""

from celery import shared_task

from templates_app.services.previews import version_previews_store


@shared_task(name="templates_app.tasks.version_previews_render", acks_late=False, ignore_result=True)
def version_previews_render(version_id: int) -> int:
    """Chromium screenshots of a submitted version, stored with its approval request."""
    return version_previews_store(version_id=version_id)

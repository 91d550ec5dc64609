"""Beat task: recompute the stored engagement scores (tracking.scores)."""

from celery import shared_task

from tracking import scores


@shared_task(name="tracking.tasks.engagement_refresh", acks_late=False, ignore_result=True)
def engagement_refresh() -> int:
    return scores.engagement_refresh()

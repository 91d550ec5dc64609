"""Beat task keeping the dashboard aggregates' delta tables short."""

from celery import shared_task

from admin_console import stats


@shared_task(name="admin_console.tasks.stats_rollup", acks_late=False, ignore_result=True)
def stats_rollup() -> bool:
    return stats.rollup()

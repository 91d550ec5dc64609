"""Beat task keeping the dashboard aggregates' delta tables short."""

from celery import shared_task

from admin_console import anomaly_feed, stats


@shared_task(name="admin_console.tasks.stats_rollup", acks_late=False, ignore_result=True)
def stats_rollup() -> bool:
    return stats.rollup()


@shared_task(name="admin_console.tasks.anomaly_tick", acks_late=False, ignore_result=True)
def anomaly_tick() -> int:
    """Judge the last finished hour of every watched series (admin_console.anomaly_feed)."""
    return anomaly_feed.anomaly_tick()

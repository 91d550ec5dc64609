"""Thin Celery wrappers around preferences services."""

from celery import shared_task

from preferences.subscriptions import double_opt_in_sweep as sweep_service


@shared_task(name="preferences.tasks.double_opt_in_sweep", acks_late=False, ignore_result=True)
def double_opt_in_sweep() -> dict:
    """Beat: remind pending double opt-ins once, expire the ones never confirmed."""
    return sweep_service()

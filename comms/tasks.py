"""Kernel beat tasks: the daily retention run (comms.retention)."""

from __future__ import annotations

import logging

from celery import shared_task

from comms.errors import ArchiveUnavailable
from comms.retention import retention_run

log = logging.getLogger(__name__)


@shared_task(name="comms.tasks.retention_daily", bind=True, acks_late=False, ignore_result=True, max_retries=23)
def retention_daily(self) -> None:
    """Remove (and archive, when configured) every kind's expired rows. Storage unreachable: nothing
    unarchived was deleted; the run is recorded as failed, logged as an error, and retried hourly."""
    try:
        retention_run(actor="retention")
    except ArchiveUnavailable as exc:
        log.error("retention stopped: archive storage unreachable (%s); retrying in an hour", exc.details)
        raise self.retry(exc=exc, countdown=3600) from exc

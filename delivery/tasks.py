"""Thin Celery wrappers: the database is the queue, these tasks only say "look now"."""

from celery import shared_task

from delivery.deliverability import probes
from delivery.deliverability.suppression_sync import suppression_sync_all
from delivery.deliverability.monitor import sending_domains_check_all
from delivery.services import drain as drain_service
from delivery.services import housekeeping_run


# acks_late off: a lost drain task loses nothing (the rows stay queued and beat wakes a worker),
# while redelivering one after a crash would only add an empty drain.
@shared_task(name="delivery.tasks.drain", acks_late=False, ignore_result=True)
def drain(priority: int) -> dict:
    stats = drain_service(priority=priority)
    return {"claimed": stats.claimed, "sent": stats.sent, "retried": stats.retried}


@shared_task(name="delivery.tasks.housekeeping", acks_late=False, ignore_result=True)
def housekeeping() -> dict:
    stats = housekeeping_run()
    return {"reaped": stats.reaped, "promoted": stats.promoted, "woken": list(stats.woken)}


@shared_task(name="delivery.tasks.suppression_sync", acks_late=False, ignore_result=True)
def suppression_sync() -> list:
    """Beat: push our suppressions to each configured ESP and import theirs (deliverability)."""
    return suppression_sync_all()


@shared_task(name="delivery.tasks.probes_tick", acks_late=False, ignore_result=True)
def probes_tick() -> dict:
    """Beat: collect the last synthetic probes' timings, then send the next round (deliverability)."""
    return probes.probes_tick()
@shared_task(name="delivery.tasks.sending_domains_check", acks_late=False, ignore_result=True)
def sending_domains_check() -> dict:
    """Beat (COMMS_DNS_CHECK_SECONDS): the DNS checks of every sending domain (delivery.deliverability)."""
    return sending_domains_check_all()


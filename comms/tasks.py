"""Thin Celery wrappers for the router's periodic work and campaign fan-out."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="comms.tasks.router_tick", acks_late=False, ignore_result=True)
def router_tick() -> dict:
    """One beat tick; each part runs on its own so one failing does not stop the others."""
    from comms.campaigns import campaigns_tick
    from comms.digests import digests_flush
    from comms.escalations import escalations_run
    from comms.schedules import schedules_run

    out = {}
    for name, fn in (("schedules", schedules_run), ("digests", digests_flush), ("escalations", escalations_run),
                     ("campaigns", campaigns_tick)):
        try:
            out[name] = vars(fn())
        except Exception:
            log.exception("router tick: %s failed", name)
    return out


@shared_task(name="comms.tasks.campaign_fanout", acks_late=True, ignore_result=True)
def campaign_fanout(campaign_id: str) -> dict:
    from comms.campaign_fanout import campaign_fanout as fanout

    return vars(fanout(campaign_id=campaign_id))


@shared_task(name="comms.tasks.campaign_cleanup", acks_late=True, ignore_result=True)
def campaign_cleanup(campaign_id: str) -> int:
    from comms.campaign_fanout import campaign_cleanup as cleanup

    return cleanup(campaign_id=campaign_id)

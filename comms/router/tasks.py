"""Thin Celery wrapper for the router's periodic work (schedules, digests, escalations, campaigns).

The task name keeps the ``comms.tasks.router_tick`` form it had before the router became an app of its
own, so the beat schedule (config/settings/) and tasks already queued keep working.
"""

from __future__ import annotations

import logging

from celery import shared_task

from comms.campaigns.services import campaigns_tick
from comms.router.digests import digests_flush
from comms.router.escalations import escalations_run
from comms.router.journey_advance import journeys_advance, journeys_tick
from comms.router.schedules import schedules_run

log = logging.getLogger(__name__)


@shared_task(name="comms.tasks.router_tick", acks_late=False, ignore_result=True)
def router_tick() -> dict:
    """One beat tick; each part runs on its own so one failing does not stop the others."""
    out = {}
    for name, fn in (("schedules", schedules_run), ("digests", digests_flush), ("escalations", escalations_run),
                     ("campaigns", campaigns_tick), ("journeys", journeys_tick)):
        try:
            out[name] = vars(fn())
        except Exception:
            log.exception("router tick: %s failed", name)
    return out


@shared_task(name="comms.router.journeys_wake", acks_late=False, ignore_result=True)
def journeys_wake(run_ids: list[str] | None = None) -> dict:
    """Advance just-entered or just-woken runs at once (the router tick is the safety net)."""
    return vars(journeys_advance(ids=run_ids) if run_ids else journeys_tick())

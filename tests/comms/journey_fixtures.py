"""Templates, people and definitions shared by the journey tests (time is moved by passing `now=`)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from comms.models import Device
from comms.router.events import EventInput, event_ingest
from comms.router.journeys import journeys_advance
from comms.router.models import JourneyRun
from tests.comms.router_fixtures import live_template, person

CART_SCHEMA = {"type": "object", "properties": {"cart_id": {"type": "string"}, "total": {"type": "number"}}}


def journey_templates(tenant) -> None:
    common = {"schema": CART_SCHEMA, "sample": {"cart_id": "C0", "total": 1}}
    live_template(tenant, "cart_email", subject="Your cart {{cart_id}} misses you",
                  body_html="<p>Cart {{cart_id}} is waiting.</p>", channels=["email"], **common)
    live_template(tenant, "cart_sms", subject="Cart {{cart_id}}", body_html="<p>x</p>", sms="Cart {{cart_id}} waits",
                  channels=["sms"], **common)
    live_template(tenant, "cart_push", subject="Cart {{cart_id}}", body_html="<p>x</p>", channels=["push"],
                  push=("Your cart", "Cart {{cart_id}} is still there"), **common)
    for day in range(1, 4):
        live_template(tenant, f"welcome_{day}", subject=f"Welcome, day {day}", body_html=f"<p>Day {day}</p>",
                      channels=["email", "in_app"], category="marketing")


def shopper(tenant, external_id: str, *, push: bool = False, phone: bool = False, tz: str = "UTC", **attrs):
    recipient = person(tenant, external_id, tz=tz, **attrs)
    if phone:
        recipient.phone = "+14155550100"
        recipient.save(update_fields=["phone"])
    if push:
        Device.objects.create(tenant=tenant, recipient=recipient, token=f"tok-{external_id}", platform="android",
                              app_id="app")
    return recipient


CART = {
    "entry": {"event": "cart.abandoned", "when": "payload.total > 0"},
    "start": "wait_order",
    "steps": {
        "wait_order": {"type": "wait", "event": "order.placed", "when": "payload.cart_id == entry.cart_id",
                       "timeout_seconds": 3600, "on_event": "bought", "next": "email"},
        "email": {"type": "send", "template": "cart_email", "channels": ["email"], "category": "transactional",
                  "next": "wait_day"},
        "wait_day": {"type": "wait", "seconds": 86400, "next": "opened?"},
        "opened?": {"type": "branch", "cases": [{"message": {"step": "email", "is": "opened"}, "next": "sms"}],
                    "default": "push"},
        "sms": {"type": "send", "template": "cart_sms", "channels": ["sms"], "category": "transactional",
                "next": "done"},
        "push": {"type": "send", "template": "cart_push", "channels": ["push"], "category": "transactional",
                 "next": "done"},
        "bought": {"type": "exit", "name": "bought within the hour"},
        "done": {"type": "exit"},
    },
}

WELCOME = {
    "entry": {"event": "user.signed_up"},
    "start": "day1",
    "goals": [{"event": "subscription.started"}],
    "steps": {
        "day1": {"type": "send", "template": "welcome_1", "channels": ["email"], "next": "w1"},
        "w1": {"type": "wait", "seconds": 2 * 86400, "next": "day3"},
        "day3": {"type": "send", "template": "welcome_2", "channels": ["email"], "next": "w2"},
        "w2": {"type": "wait", "seconds": 2 * 86400, "next": "morning"},
        "morning": {"type": "wait", "until": {"at": "09:00", "days": "weekdays"}, "next": "day5"},
        "day5": {"type": "send", "template": "welcome_3", "channels": ["email"]},
    },
}


def definition(base: dict, **changes) -> dict:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def advance(now: datetime, limit: int = 10_000):
    return journeys_advance(now=now, limit=limit)


def run_of(recipient) -> JourneyRun:
    return JourneyRun.objects.select_related("version").get(recipient=recipient)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def ingest(tenant, name: str, recipients: list[str], payload: dict, now: datetime, cause_ref: str = ""):
    """An event through the real intake (rules and journeys), at a simulated time."""
    return event_ingest(tenant=tenant, now=now, event=EventInput(name=name, recipients=tuple(recipients),
                                                                 payload=payload, cause_ref=cause_ref))

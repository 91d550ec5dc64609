"""The send-time gate: every claimed row passes the preferences decision before a provider sees it.

Checked at send time, not enqueue time (EC-COM-020): a preference changed while a campaign waits
in the queue applies to every row not yet sent. The decision is made for the whole claimed batch
at once (one query per preferences table per batch), and only rows that must not go now are
written here: blocked (terminal, with the reason code, then the next fallback channel if any),
deferred to the end of quiet hours (promoted back to 'queued' by housekeeping when due), or handed
to the digest collector.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils.module_loading import import_string

from comms.enums import LogEvent, Status
from comms.models import Recipient
from delivery.models import Message
from delivery.providers.base import SendResult
from preferences import catalogue
from preferences.decision import ALLOW, BLOCK, DEFER, DIGEST, Decision, Item, decide_many
from preferences.services import raise_if_blocked, send_decision

log = logging.getLogger(__name__)


def screen(messages: list[Message], *, now: datetime) -> dict:
    """{message id: Decision} for the rows that must not be sent now (allowed rows are absent)."""
    if not messages:
        return {}
    need_tz = set()
    for m in messages:
        if m.recipient_id:
            cat = catalogue.category(m.tenant_id, m.category)
            if not cat.critical and (cat.respects_quiet_hours or (cat.marketing and m.channel in ("sms", "voice"))):
                need_tz.add(m.recipient_id)
    zones = {}
    if need_tz:
        zones = dict(Recipient.objects.filter(pk__in=need_tz).values_list("id", "timezone"))
    items = [Item(key=m.id, tenant_id=m.tenant_id, recipient_id=m.recipient_id, channel=m.channel,
                  category=m.category, address=m.recipient_address if m.channel != "in_app" else "",
                  timezone=zones.get(m.recipient_id, "")) for m in messages]
    decisions = decide_many(items, now=now)
    return {key: d for key, d in decisions.items() if d.verdict != ALLOW}


def hold(message: Message, decision: Decision, *, owner: str, now: datetime, stats) -> bool:
    """Write the outcome of a row the gate stopped; False when the row should be sent after all
    (a digest frequency with no digest collector configured)."""
    from delivery.services.engine import _record
    from delivery.services.follow_ups import message_fallback

    if decision.verdict == DIGEST:
        handler = settings.COMMS_DIGEST_HANDLER
        if not handler or not import_string(handler)(message=message, decision=decision, now=now):
            return False
        _record(message, owner=owner, now=now, status=Status.BLOCKED, event=LogEvent.BLOCKED,
                result=SendResult.permanent("COMMS_DIGESTED", decision.reason), provider="")
        stats.blocked += 1
        return True
    if decision.verdict == DEFER:
        ok = _record(message, owner=owner, now=now, status=Status.DEFERRED, event=LogEvent.DEFERRED,
                     result=SendResult.transient(decision.code, decision.reason), provider="",
                     next_at=decision.until, attempt_delta=-1)
        stats.deferred += ok
        return True
    if decision.verdict == BLOCK:
        ok = _record(message, owner=owner, now=now, status=Status.BLOCKED, event=LogEvent.BLOCKED,
                     result=SendResult.permanent(decision.code, decision.reason), provider="")
        stats.blocked += ok
        if ok and message.fallback_channels:
            message_fallback(message=message)  # seed 001: SMS without consent falls back to email/in-app
        return True
    return False


def refuse_if_blocked(*, tenant, recipient, channel: str, category: str, address: str, now: datetime) -> None:
    """The API's early answer: a send the gate would certainly block now is refused with the same
    code (422 COMMS_SUPPRESSED / COMMS_PREF_BLOCKED / COMMS_NO_CONSENT) instead of being queued to
    fail. Quiet hours and digests are accepted (the worker defers or collects them)."""
    raise_if_blocked(send_decision(recipient=recipient, tenant=tenant, channel=channel, category=category,
                                   address=address if channel != "in_app" else "", now=now))

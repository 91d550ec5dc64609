"""The can-send decision: allow, defer until a time, block with a reason code, or digest.

Rules, in this order (the first that answers wins):

1. **Suppression** of the address, whoever the recipient (EC-COM-017). Critical categories pass an
   e-mail *unsubscribe* suppression (a security notice is not commercial mail), never a bounce,
   complaint, invalid, manual or legal one, and never an SMS STOP (carriers block after STOP).
2. **Consent**: marketing SMS and marketing voice calls need a recorded express consent (TCPA; a
   grant for the channel, or for every channel; an SMS grant does not cover calls); e-mail of a category marked
   ``double_opt_in`` needs a confirmed subscription (EC-COM-021).
3. **Preference** for channel × category (no row: the category's default matrix). Critical
   categories skip it.
4. **Frequency**: ``never`` blocks, a digest frequency answers ``digest`` (the digest builder
   collects it), ``realtime`` goes on.
5. **Quiet hours** in the recipient's time zone (default 21:00-08:00 on SMS, push and voice;
   per-category overrides), deferred to the window's end plus a jitter; and the TCPA rule that
   marketing SMS and marketing calls only go 08:00-21:00 local, whatever the recipient's own settings.

The rules are a pure function of :class:`Facts`, which :func:`load_facts` reads for a whole batch
with one query per table, so the worker pays a handful of queries per claimed batch, not per
message.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from django.conf import settings
from django.db import connection
from django.db.models import Q

from preferences import catalogue
from preferences.hashing import address_hash

ALLOW, DEFER, BLOCK, DIGEST = "allow", "defer", "block", "digest"
SUPPRESSED, PREF_BLOCKED, NO_CONSENT, QUIET_HOURS = (
    "COMMS_SUPPRESSED", "COMMS_PREF_BLOCKED", "COMMS_NO_CONSENT", "COMMS_QUIET_HOURS")
DEFAULT_QUIET = (dt.time(21, 0), dt.time(8, 0))
DEFAULT_QUIET_CHANNELS = ("sms", "push", "voice")
# Channels that reach a phone number, where TCPA consent and calling hours apply to marketing.
PHONE_CHANNELS = ("sms", "voice")
TCPA_WINDOW = (dt.time(8, 0), dt.time(21, 0))  # 47 U.S.C. § 227 / 47 CFR 64.1200(c)(1): 8 a.m.-9 p.m. local


@dataclass(frozen=True)
class Decision:
    verdict: str
    code: str = ""
    reason: str = ""
    until: dt.datetime | None = None
    frequency: str = "realtime"

    @property
    def allowed(self) -> bool:
        return self.verdict == ALLOW


ALLOWED = Decision(ALLOW)


@dataclass(frozen=True)
class Item:
    """One prospective send, as plain values (a Message row or an API request)."""

    key: Any
    tenant_id: Any
    recipient_id: Any
    channel: str
    category: str
    address: str
    timezone: str = ""


@dataclass
class Facts:
    suppressions: dict = field(default_factory=dict)   # (tenant, channel, hash) -> (reason, expires_at)
    preferences: dict = field(default_factory=dict)    # (recipient, channel, category) -> (enabled, frequency)
    quiet: dict = field(default_factory=dict)          # (recipient, category) -> QuietHours row values
    consent: dict = field(default_factory=dict)        # recipient|hash -> [(id, channel, category, action)]
    subscriptions: dict = field(default_factory=dict)  # (recipient, list, channel) -> (status, confirmed)
    hashes: dict = field(default_factory=dict)         # item key -> address hash


@lru_cache(maxsize=512)
def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@lru_cache(maxsize=4096)
def phone_zones(number: str) -> tuple[str, ...]:
    """Time zones a phone number may be in (libphonenumber's prefix data); the TCPA window must
    hold in every one of them when the recipient's own zone is unknown."""
    import phonenumbers
    from phonenumbers import timezone as pn_tz

    try:
        zones = pn_tz.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return ("UTC",)
    zones = tuple(z for z in zones if z != pn_tz.UNKNOWN_TIMEZONE)
    return zones or ("UTC",)


def in_window(local: dt.time, start: dt.time, end: dt.time) -> bool:
    """Whether `local` lies in [start, end), a window that may wrap past midnight."""
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_local(now: dt.datetime, at: dt.time, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The next instant after `now` at which the wall clock in `tz` reads `at` (DST-safe: a time
    skipped by a spring-forward gap maps to just after the gap)."""
    local = now.astimezone(tz)
    for days in (0, 1, 2):
        day = local.date() + dt.timedelta(days=days)
        candidate = dt.datetime.combine(day, at, tzinfo=tz)
        # Round-trip through UTC to normalise a non-existent (gap) wall time.
        candidate = candidate.astimezone(dt.timezone.utc)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within two days")


def jitter() -> dt.timedelta:
    """Spread the end-of-quiet-hours wave: a minute plus up to COMMS_QUIET_HOURS_JITTER seconds."""
    return dt.timedelta(seconds=60 + random.uniform(0, settings.COMMS_QUIET_HOURS_JITTER))


def _suppressions(tenant_id: Any, channels: set[str], hashes: set[str]) -> list[tuple]:
    """Suppression rows of these addresses on these channels: (channel, hash, reason, expires_at).

    Plain SQL because every API send asks it for one address, where building the ORM query cost
    several times the query itself; all three columns of the unique index are constrained.
    """
    from preferences.models import Suppression

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT channel, address_hash, reason, expires_at FROM {Suppression._meta.db_table} "
                       "WHERE tenant_id = %s AND channel = ANY(%s) AND address_hash = ANY(%s)",
                       [tenant_id, sorted(channels), sorted(hashes)])
        return cursor.fetchall()


def load_facts(items: list[Item], *, now: dt.datetime) -> Facts:
    """Everything the rules need for `items`, one query per table (none for a table no item needs)."""
    from preferences.models import ChannelSubscription, ConsentRecord, QuietHours, UserPreference

    facts = Facts()
    if not items:
        return facts
    by_hash: dict = defaultdict(set)
    channels_of: dict = defaultdict(set)
    prefs_for, quiet_for, consent_for, subs_for = set(), set(), [], set()
    for item in items:
        h = address_hash(item.channel, item.address) if item.address else ""
        facts.hashes[item.key] = h
        if h:
            by_hash[item.tenant_id].add(h)
            channels_of[item.tenant_id].add(item.channel)
        cat = catalogue.category(item.tenant_id, item.category)
        if item.channel in PHONE_CHANNELS and cat.marketing:
            consent_for.append((item, h))
        if item.channel == "email" and cat.double_opt_in and item.recipient_id:
            subs_for.add(item.recipient_id)
        if item.recipient_id and not cat.critical:
            prefs_for.add(item.recipient_id)
            if cat.respects_quiet_hours:
                quiet_for.add(item.recipient_id)
    for tenant_id, hashes in by_hash.items():
        for channel, h, reason, expires in _suppressions(tenant_id, channels_of[tenant_id], hashes):
            if expires is None or expires > now:
                facts.suppressions[(str(tenant_id), channel, h)] = reason
    if prefs_for:
        for rid, channel, category, enabled, frequency in UserPreference.objects.filter(
                recipient_id__in=prefs_for).values_list("recipient_id", "channel", "category", "enabled", "frequency"):
            facts.preferences[(str(rid), channel, category)] = (enabled, frequency)
    if quiet_for:
        for row in QuietHours.objects.filter(recipient_id__in=quiet_for).values(
                "recipient_id", "category", "enabled", "start", "end", "timezone", "channels"):
            facts.quiet[(str(row["recipient_id"]), row["category"])] = row
    if consent_for:
        rids = {i.recipient_id for i, _ in consent_for if i.recipient_id}
        hashes = {h for _, h in consent_for if h}
        tenants = {i.tenant_id for i, _ in consent_for}
        rows = ConsentRecord.objects.filter(
            Q(recipient_id__in=rids) | Q(address_hash__in=hashes), tenant_id__in=tenants,
            channel__in=[*PHONE_CHANNELS, ""]).values_list("id", "recipient_id", "address_hash", "channel", "category", "action")
        for pk, rid, h, channel, category, action in rows:
            for who in ((str(rid),) if rid else ()) + ((h,) if h else ()):
                facts.consent.setdefault(who, []).append((pk, channel, category, action))
    if subs_for:
        for rid, list_id, channel, status, confirmed in ChannelSubscription.objects.filter(
                recipient_id__in=subs_for).values_list("recipient_id", "list_id", "channel", "status",
                                                       "double_opt_in_confirmed"):
            facts.subscriptions[(str(rid), list_id, channel)] = (status, confirmed)
    return facts


def _consented(facts: Facts, item: Item, h: str, category: str) -> bool:
    """The latest record that covers this channel and category (or all of either) is a grant."""
    latest = None
    for who in ((str(item.recipient_id),) if item.recipient_id else ()) + ((h,) if h else ()):
        for pk, channel, cat, action in facts.consent.get(who, ()):
            if channel in (item.channel, "") and cat in (category, "") and (latest is None or pk > latest[0]):
                latest = (pk, action)
    return latest is not None and latest[1] == "granted"


def decide(item: Item, facts: Facts, *, now: dt.datetime) -> Decision:
    """Apply the rules to one item (see the module docstring for their order)."""
    cat = catalogue.category(item.tenant_id, item.category)
    h = facts.hashes.get(item.key) or (address_hash(item.channel, item.address) if item.address else "")
    rid = str(item.recipient_id) if item.recipient_id else ""

    reason = facts.suppressions.get((str(item.tenant_id), item.channel, h)) if h else None
    if reason and not (cat.critical and reason == "unsubscribe" and item.channel == "email"):
        return Decision(BLOCK, SUPPRESSED, f"address suppressed ({reason})")

    if item.channel == "sms" and cat.marketing and not _consented(facts, item, h, cat.key):
        return Decision(BLOCK, NO_CONSENT, "marketing SMS needs recorded express consent (TCPA)")
    if item.channel == "voice" and cat.marketing and not _consented(facts, item, h, cat.key):
        # 47 CFR 64.1200(a)(2)-(3): prerecorded/artificial-voice marketing calls need prior express
        # written consent; a grant for texts does not cover calls.
        return Decision(BLOCK, NO_CONSENT, "marketing calls need recorded express consent (TCPA)")
    if item.channel == "email" and cat.double_opt_in:
        status, confirmed = facts.subscriptions.get((rid, cat.key, "email"), ("", False)) if rid else ("", False)
        if status != "subscribed" or not confirmed:
            return Decision(BLOCK, NO_CONSENT, f"'{cat.key}' e-mail needs a confirmed (double opt-in) subscription")

    frequency = "realtime"
    if rid and not cat.critical:
        enabled, frequency = facts.preferences.get((rid, item.channel, cat.key), (cat.default_for(item.channel),
                                                                                  "realtime"))
        if not enabled or frequency == "never":
            return Decision(BLOCK, PREF_BLOCKED, f"recipient opted out of {cat.key or item.category} "
                                                 f"on {item.channel}")
        if frequency in ("daily_digest", "weekly_digest"):
            return Decision(DIGEST, reason=f"recipient wants {frequency}", frequency=frequency)

    if cat.critical or not cat.respects_quiet_hours:
        return ALLOWED
    if item.channel in PHONE_CHANNELS and cat.marketing:
        zones = (item.timezone,) if item.timezone else phone_zones(item.address)
        outside = [z for z in zones if not in_window(now.astimezone(zone(z)).time(), *TCPA_WINDOW)]
        if outside:
            until = max(next_local(now, TCPA_WINDOW[0], zone(z)) for z in outside)
            what = "marketing SMS" if item.channel == "sms" else "marketing calls"
            return Decision(DEFER, QUIET_HOURS, f"{what} only 08:00-21:00 local (TCPA)", until + jitter())
    if rid:
        window = quiet_window(facts, rid, cat, item.timezone)
        if window and item.channel in window["channels"]:
            tz = zone(window["timezone"])
            if in_window(now.astimezone(tz).time(), window["start"], window["end"]):
                until = next_local(now, window["end"], tz)
                return Decision(DEFER, QUIET_HOURS, f"quiet hours until {window['end']:%H:%M} {tz.key}",
                                until + jitter())
    return ALLOWED


def quiet_window(facts: Facts, rid: str, cat: catalogue.CategoryInfo, tz: str) -> dict | None:
    """The window that applies: the recipient's row for this category, else the category's own
    override (e.g. bookings), else the recipient's general row, else 21:00-08:00."""
    own = facts.quiet.get((rid, cat.key))
    general = facts.quiet.get((rid, ""))
    base = own or general
    if base is not None and not base["enabled"]:
        return None
    if own:
        start, end = own["start"], own["end"]
    elif cat.quiet_start and cat.quiet_end:
        start, end = cat.quiet_start, cat.quiet_end
    elif general:
        start, end = general["start"], general["end"]
    else:
        start, end = DEFAULT_QUIET
    return {"start": start, "end": end, "timezone": (base or {}).get("timezone") or tz or "UTC",
            "channels": tuple((base or {}).get("channels") or DEFAULT_QUIET_CHANNELS)}


def decide_many(items: Iterable[Item], *, now: dt.datetime) -> dict:
    """Decisions for a batch: {item.key: Decision}."""
    items = list(items)
    facts = load_facts(items, now=now)
    return {item.key: decide(item, facts, now=now) for item in items}

"""Send-time optimisation: each recipient's best hour of the week, smoothed towards the tenant.

A recipient's opens and clicks are counted by hour of week (0 = Monday 00:00 UTC … 167). Few
people have enough history for their own counts to be trusted, so the estimate is additive
(Dirichlet) smoothing towards the tenant's population profile:

    score[h] = (own[h] + k · population_share[h]) / (own_total + k)

With no history the population's peak wins; with a long history the recipient's own habit does.
``k`` (prior strength, in events) is the knob; the bench (bench/send_time.py) measures it.

Choosing a send time: among the whole hours from now to now + N hours, skip those inside the
recipient's quiet hours and take the highest-scoring one (ties: the earliest). No allowed hour →
send now and let the send path's quiet-hours deferral apply as it always does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count
from django.db.models.expressions import RawSQL
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

from comms import errors
from comms.models import Recipient
from delivery.models import Message
from preferences import catalogue
from preferences.models import QuietHours
from tracking.models import EventType, MessageEvent

HOURS_OF_WEEK = 168
MAX_WINDOW_HOURS = 7 * 24
DEFAULT_PRIOR_EVENTS = 4.0
PROFILE_DAYS = 90

SendTimeWindow = errors.error_class(
    "COMMS_SEND_TIME_WINDOW", 400, f"The best-hour window is a whole number of hours in 1..{MAX_WINDOW_HOURS}.")
Quiet = tuple[time, time, str] | None


def within_hours_clean(value: object, *, path: str) -> int:
    """The one rule for "best hour within N hours" (campaigns and journeys): an integer 1..168.

    A week is the limit because the profile is an hour-of-week one: a longer window would only repeat
    hours already offered. Booleans are refused although Python counts them as integers.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_HOURS:
        raise SendTimeWindow(f"{path} is a whole number of hours in 1..{MAX_WINDOW_HOURS} (got {value!r}).",
                             details={"path": path, "value": value if isinstance(value, (int, str)) else repr(value),
                                      "min": 1, "max": MAX_WINDOW_HOURS})
    return value


def hour_of_week(at: datetime) -> int:
    """0 … 167, Monday 00:00 UTC first."""
    at = at.astimezone(timezone.utc)
    return at.weekday() * 24 + at.hour


def pooled_counts(own: Sequence[float], *, neighbour: float = 0.5) -> list[float]:
    """Counts shared across the week's days and the adjacent hours.

    A person who opens at 08:10 on Tuesday probably reads at 08:00 on Thursday too: with a handful
    of events spread over 168 cells, pooling by hour of day (and half-weight to the hour either
    side) is what makes their own history informative (bench/send_time.py measures the gain).
    """
    by_hour = [sum(own[d * 24 + h] for d in range(7)) for h in range(24)]
    smoothed = [by_hour[h] + neighbour * (by_hour[h - 1] + by_hour[(h + 1) % 24]) for h in range(24)]
    return [own[h] + smoothed[h % 24] for h in range(HOURS_OF_WEEK)]


def smoothed_profile(own: Sequence[float], population: Sequence[float], *,
                     prior_events: float = DEFAULT_PRIOR_EVENTS, pool: bool = True) -> list[float]:
    """The recipient's engagement share per hour of week, shrunk towards the population's."""
    own = pooled_counts(own) if pool else list(own)
    pop_total = float(sum(population))
    share = [p / pop_total for p in population] if pop_total > 0 else [1.0 / HOURS_OF_WEEK] * HOURS_OF_WEEK
    own_total = float(sum(own))
    denom = own_total + prior_events
    if denom <= 0:
        return share
    return [(own[h] + prior_events * share[h]) / denom for h in range(HOURS_OF_WEEK)]


def _in_quiet(at: datetime, quiet: tuple[time, time, str] | None) -> bool:
    """Quiet hours as preferences stores them: (start, end, IANA zone); a window may wrap midnight."""
    if not quiet:
        return False
    start, end, zone = quiet
    try:
        local = at.astimezone(ZoneInfo(zone or "UTC")).time()
    except (KeyError, ValueError):
        local = at.astimezone(timezone.utc).time()
    if start == end:
        return False
    return start <= local < end if start < end else (local >= start or local < end)


def best_send_time(profile: Sequence[float], *, now: datetime, within_hours: int,
                   quiet: tuple[time, time, str] | None = None) -> datetime:
    """The start of the best allowed whole hour in [now, now + within_hours]; now if none is allowed.

    The current hour counts as "now" itself, so a recipient whose best hour is the current one is
    not delayed by up to 59 minutes.
    """
    if not 0 <= within_hours <= MAX_WINDOW_HOURS:
        raise ValueError(f"within_hours must be 0..{MAX_WINDOW_HOURS}")
    best_at, best_score = None, -1.0
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    for step in range(within_hours + 1):
        candidate = now if step == 0 else hour_start + timedelta(hours=step)
        if candidate > now + timedelta(hours=within_hours) or _in_quiet(candidate, quiet):
            continue
        score = profile[hour_of_week(candidate)]
        if score > best_score:
            best_at, best_score = candidate, score
    return best_at or now


# --- reading engagement from tracking --------------------------------------------------------------

def _ids_in(ids: list[str]) -> RawSQL:
    """``IN (SELECT unnest(array))``: one parameter for any number of ids. A chunk of 10,000 ids as
    10,000 parameters cost more to build and parse than the query itself (bench/campaign_best_hour.py)."""
    return RawSQL("SELECT unnest(%s::uuid[])", (ids,))


# Per recipient of the chunk (LATERAL: index probes through delivery_message's recipient index, then
# tracking's message index), so a chunk's read costs its recipients' messages, not the tenant's tables:
# a hash join chosen for 10,000 ids scanned every message and event of the tenant per chunk
# (docs/benchmarks.md, "Best-hour campaigns"). Hours are UTC, as hour_of_week counts them.
_PROFILES_SQL = f"""
SELECT r.id, extract(isodow FROM x.ts AT TIME ZONE 'UTC'), extract(hour FROM x.ts AT TIME ZONE 'UTC'), count(*)
  FROM unnest(%(ids)s::uuid[]) AS r(id)
  JOIN LATERAL (
    SELECT e.timestamp AS ts FROM {Message._meta.db_table} m
      JOIN {MessageEvent._meta.db_table} e ON e.message_id = m.id
     WHERE m.recipient_id = r.id AND m.tenant_id = %(tenant)s AND e.event_type = ANY(%(kinds)s)
       AND e.timestamp >= %(since)s AND e.timestamp < %(until)s) x ON true
 GROUP BY 1, 2, 3
"""


def _engagement(tenant_id: int, days: int, until: datetime | None):
    until = until or datetime.now(timezone.utc)
    base = MessageEvent.objects.filter(message__tenant_id=tenant_id, timestamp__gte=until - timedelta(days=days),
                                       timestamp__lt=until, event_type__in=[EventType.OPENED, EventType.CLICKED])
    return base.annotate(dow=ExtractIsoWeekDay("timestamp"), hr=ExtractHour("timestamp"))


def population_profile(*, tenant_id: int, days: int = PROFILE_DAYS, until: datetime | None = None) -> list[int]:
    """The tenant's opens and clicks by hour of week over ``days`` before ``until`` (one grouped query)."""
    population = [0] * HOURS_OF_WEEK
    for row in _engagement(tenant_id, days, until).values("dow", "hr").annotate(n=Count("id")):
        population[(row["dow"] - 1) * 24 + row["hr"]] += row["n"]
    return population


def recipient_profiles(*, tenant_id: int, recipient_ids: Iterable[object], days: int = PROFILE_DAYS,
                       until: datetime | None = None) -> dict[str, list[int]]:
    """{recipient id: opens and clicks by hour of week}: one grouped query for all of them.

    ``until`` bounds the history so a plan made for an instant is reproducible (a resumed campaign
    fan-out chooses the same hours as the interrupted one).
    """
    ids = [str(r) for r in recipient_ids]
    own: dict[str, list[int]] = {rid: [0] * HOURS_OF_WEEK for rid in ids}
    if ids:
        until = until or datetime.now(timezone.utc)
        with connection.cursor() as cursor:
            cursor.execute(_PROFILES_SQL, {"ids": ids, "tenant": tenant_id, "since": until - timedelta(days=days),
                                           "until": until, "kinds": [EventType.OPENED, EventType.CLICKED]})
            for rid, dow, hr, n in cursor.fetchall():
                own[str(rid)][(int(dow) - 1) * 24 + int(hr)] += n
    return own


def engagement_profiles(*, tenant_id: int, recipient_ids: Iterable[object], days: int = PROFILE_DAYS,
                        until: datetime | None = None) -> tuple[list[int], dict[str, list[int]]]:
    """(population counts, {recipient id: counts}) of opens and clicks by hour of week, last ``days``.

    Two grouped queries over tracking's events joined to their messages (indexed by recipient); the
    population is the tenant's whole engagement in the same period.
    """
    return (population_profile(tenant_id=tenant_id, days=days, until=until),
            recipient_profiles(tenant_id=tenant_id, recipient_ids=recipient_ids, days=days, until=until))


def quiet_windows(*, recipient_ids: Iterable[object], channel: str, category: str = ""
                  ) -> dict[str, Quiet]:
    """Each recipient's quiet window for this channel, as preferences keeps it.

    A category row beats the general one; no row means preferences' default (21:00–08:00 in the
    recipient's zone on SMS and push, none elsewhere); a row's empty channel list means SMS and push.
    """
    ids = [str(r) for r in recipient_ids]
    rows: dict[str, QuietHours] = {}
    for row in QuietHours.objects.filter(recipient_id__in=_ids_in(ids), category__in=["", category]).order_by("category"):
        rows[str(row.recipient_id)] = row  # ordered so the category row (non-empty) wins
    # Zones matter for the SMS/push default and for rows without their own zone; on other channels
    # most recipients have no row, so their zones are not read at all.
    zoned = ids if channel in ("sms", "push") else [rid for rid, row in rows.items() if not row.timezone]
    zones = dict(Recipient.objects.filter(pk__in=_ids_in(zoned)).values_list("id", "timezone")) if zoned else {}
    zones = {str(pk): zone for pk, zone in zones.items()}
    out: dict[str, tuple[time, time, str] | None] = {}
    for rid in ids:
        zone = zones.get(rid) or "UTC"
        row = rows.get(rid)
        if row is None:
            out[rid] = (time(21), time(8), zone) if channel in ("sms", "push") else None
        elif not row.enabled or channel not in (row.channels or ["sms", "push"]):
            out[rid] = None
        else:
            out[rid] = (row.start, row.end, row.timezone or zone)
    return out


class BestHourPlanner:
    """Best send times for many recipients at once: what campaigns and journeys call.

    The population profile is read once per planner (one fan-out, one journey batch); each
    ``plan`` call reads its recipients' history and quiet windows in a constant number of queries
    (no query per recipient). Recipients without history share one profile, so their choice is
    computed once per distinct quiet window: most of an audience costs a dictionary look-up.
    Critical categories ignore quiet hours (as preferences' decision does).
    """

    def __init__(self, *, tenant_id: int, channel: str, category: str = "", until: datetime | None = None,
                 prior_events: float = DEFAULT_PRIOR_EVENTS) -> None:
        self.tenant_id, self.channel, self.category, self.until = tenant_id, channel, category, until
        self.prior_events = prior_events
        self.population = population_profile(tenant_id=tenant_id, until=until)
        self.share = smoothed_profile([0] * HOURS_OF_WEEK, self.population, prior_events=prior_events)
        self.critical = bool(category) and catalogue.category(tenant_id, category).critical
        self._shared: dict[tuple, datetime] = {}

    def load(self, recipient_ids: Sequence[object]) -> tuple[dict[str, list[int]], dict[str, Quiet]]:
        """Their history and quiet windows: two queries for the lot (none for an empty list)."""
        ids = [str(r) for r in recipient_ids]
        if not ids:
            return {}, {}
        own = recipient_profiles(tenant_id=self.tenant_id, recipient_ids=ids, until=self.until)
        quiet = {} if self.critical else quiet_windows(recipient_ids=ids, channel=self.channel, category=self.category)
        return own, quiet

    def choose(self, counts: Sequence[int] | None, window: Quiet, *, start: datetime, within_hours: int) -> datetime:
        """One recipient's best allowed hour in [start, start + within_hours] (no history: the population's)."""
        if counts is None or not any(counts):
            key = (start, within_hours, window)
            if key not in self._shared:
                self._shared[key] = best_send_time(self.share, now=start, within_hours=within_hours, quiet=window)
            return self._shared[key]
        profile = smoothed_profile(counts, self.population, prior_events=self.prior_events)
        return best_send_time(profile, now=start, within_hours=within_hours, quiet=window)

    def plan(self, recipient_ids: Sequence[object], *, start: datetime, within_hours: int) -> dict[str, datetime]:
        """{recipient id: the start of their best allowed hour in [start, start + within_hours]}."""
        own, quiet = self.load(recipient_ids)
        return {rid: self.choose(own.get(rid), quiet.get(rid), start=start, within_hours=within_hours)
                for rid in map(str, recipient_ids)}

"""Analytics over a period: delivery, engagement and performance figures (seed 004 /analytics/*).

Every reader is one statement over an aggregate or an index range, never a scan of delivery_message:

* delivery: the daily aggregate admin_console_eventday UNION ALL its pending deltas (stats.py);
* engagement: the daily engagement aggregate tracking_engagementday (opens and clicks, total and
  unique, upserted by tracking's events_apply), through the leading `day` column of its unique key;
* performance: the daily outcome aggregate delivery_outcomeday (latency histograms and counts per
  error code, upserted by the outcome path), through the leading `day` column of its unique key.

A period is whole UTC days, `from` and `to` both included, at most COMMS_ANALYTICS_MAX_DAYS long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.utils import timezone

from admin_console import stats
from comms.errors import error_class
from delivery.latency import buckets

PeriodInvalid = error_class("COMMS_ANALYTICS_PERIOD_INVALID", 400, "from/to must be ISO dates with from <= to.")
PeriodTooLong = error_class("COMMS_ANALYTICS_PERIOD_TOO_LONG", 400, "The period is longer than allowed.")
UnknownDimension = error_class("COMMS_ANALYTICS_UNKNOWN_DIMENSION", 400, "Unknown group_by dimension.")

DEFAULT_DAYS = 30


def max_days() -> int:
    return settings.COMMS_ANALYTICS_MAX_DAYS


@dataclass(frozen=True)
class Period:
    """Whole UTC days [start, end] (both included)."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=dt_timezone.utc)

    @property
    def until(self) -> datetime:
        """Exclusive upper bound: midnight after `end`."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=dt_timezone.utc)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.days}


def _date(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw[:10]) if len(raw) >= 10 else date.fromisoformat(raw)
    except ValueError:
        raise PeriodInvalid(f"{field} must be an ISO date (YYYY-MM-DD).", details={"field": field}) from None


def parse_period(raw_from: str | None, raw_to: str | None, *, today: date | None = None) -> Period:
    """The period a request asks for; default the last 30 UTC days. Reversed or too long → typed error."""
    today = today or timezone.now().astimezone(dt_timezone.utc).date()
    end = _date(raw_to, "to") if raw_to else today
    start = _date(raw_from, "from") if raw_from else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise PeriodInvalid("from lies after to.", details={"from": start.isoformat(), "to": end.isoformat()})
    period = Period(start, end)
    if period.days > max_days():
        raise PeriodTooLong(f"The period is {period.days} days; at most {max_days()} are allowed.",
                            details={"days": period.days, "max_days": max_days()})
    return period


def parse_group_by(raw: str | None, allowed: dict[str, str], default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated dimensions, each one of `allowed` (name → SQL expression)."""
    if not raw:
        return default
    dims = tuple(d.strip() for d in raw.split(",") if d.strip())
    unknown = [d for d in dims if d not in allowed]
    if unknown or not dims or len(set(dims)) != len(dims):
        raise UnknownDimension(f"Unknown or repeated group_by dimension(s): {', '.join(unknown) or raw}.",
                               details={"unknown": unknown, "allowed": sorted(allowed)})
    return dims


def _tenant(tenant_id: Any, alias: str = "") -> tuple[str, list]:
    return ("", []) if tenant_id is None else (f" AND {alias}tenant_id = %s", [str(tenant_id)])


def _period_dims(column: str) -> dict[str, str]:
    return {"day": f"{column}::date", "week": f"date_trunc('week', {column})::date",
            "month": f"date_trunc('month', {column})::date"}


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


# --- Delivery ---------------------------------------------------------------------------------------

DELIVERY_DIMS = {"channel": "channel", "provider": "provider", "template": "template_key",
                 "category": "category", "tenant": "tenant_id::text", **_period_dims("day")}


def delivery(*, period: Period, group_by: tuple[str, ...], tenant_id: Any = None) -> list[dict]:
    """Counts and rates per group over the period, from the daily aggregate (exact: deltas included)."""
    where, params = _tenant(tenant_id)
    source = f"""
        (SELECT day, tenant_id, channel, provider, template_key, category, event, n FROM admin_console_eventday
          WHERE day >= %s AND day <= %s{where}
         UNION ALL
         SELECT (minute AT TIME ZONE 'UTC')::date, tenant_id, channel, provider, template_key, category, event, n
           FROM admin_console_event_delta WHERE minute >= %s AND minute < %s{where}) e"""
    exprs = [DELIVERY_DIMS[d] for d in group_by]
    select = ", ".join(f"{x} AS d{i}" for i, x in enumerate(exprs))
    groups = ", ".join(str(i + 1) for i in range(len(exprs)))
    sql = (f"SELECT {select + ', ' if select else ''}event, sum(n)::bigint FROM {source} WHERE event = ANY(%s) "
           f"GROUP BY {groups + ', ' if groups else ''}event")
    rows = stats._rows(sql, [period.start, period.end, *params, period.since, period.until, *params,
                             list(stats.COUNTED)])
    out: dict[tuple, stats.Quality] = {}
    for row in rows:
        key, event, n = tuple(row[:len(exprs)]), row[-2], row[-1]
        out.setdefault(key, stats.Quality(key)).counts[event] = int(n)
    return [{**{d: _cell(v) for d, v in zip(group_by, key)}, **_flat(out[key].as_dict())}
            for key in sorted(out, key=lambda k: tuple("" if v is None else str(v) for v in k))]


def _flat(q: dict) -> dict:
    return {**q["counts"], **{k: v for k, v in q.items() if k != "counts"}}


# --- Engagement -------------------------------------------------------------------------------------

ENGAGEMENT_DIMS = {"tenant": "tenant_id::text", "provider": "provider", "device": "device", "hour": "hour",
                   "weekday": "weekday", **_period_dims("day")}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def engagement(*, period: Period, group_by: tuple[str, ...], tenant_id: Any = None) -> dict:
    """Opens, clicks and conversions, total and unique, per group and by device/hour/weekday.

    Reads the daily engagement aggregate (tracking_engagementday, upserted by tracking's events_apply
    with every applied set) through the leading `day` column of its unique key, one pass with GROUPING
    SETS for the rows and the fixed breakdowns: its cost grows with days × active keys, never with
    events. Totals are exact; a message counts as unique once, in the group of its first event of
    the type (FirstEvent). Hours and weekdays are the event's UTC time, days the day it was recorded.
    """
    where, params = _tenant(tenant_id)
    fixed = {"device": ENGAGEMENT_DIMS["device"], "hour": ENGAGEMENT_DIMS["hour"],
             "weekday": ENGAGEMENT_DIMS["weekday"]}
    cols = {**{f"g_{d}": ENGAGEMENT_DIMS[d] for d in group_by}, **{f"f_{k}": v for k, v in fixed.items()}}
    names = list(cols)
    select = ", ".join(f"{expr} AS {name}" for name, expr in cols.items())
    sets = [f"({', '.join([f'g_{d}' for d in group_by] + ['event_type'])})",
            *(f"(f_{k}, event_type)" for k in fixed)]
    flags = ", ".join(f"GROUPING({n})" for n in names)
    sql = f"""
      SELECT {flags}, {', '.join(names)}, event_type, sum(total)::bigint, sum(uniques)::bigint FROM (
        SELECT {select}, event_type, total, uniques FROM tracking_engagementday
         WHERE day >= %s AND day <= %s AND event_type = ANY(%s){where}) ev
       GROUP BY GROUPING SETS ({', '.join(sets)})"""
    result: dict[str, dict[tuple, dict]] = {"rows": {}, "device": {}, "hour": {}, "weekday": {}}
    for row in stats._rows(sql, [period.start, period.end, list(_PREFIX), *params]):
        flag, values = row[:len(names)], row[len(names):2 * len(names)]
        event, total, unique = row[-3], row[-2], row[-1]
        present = [n for n, f in zip(names, flag) if not f]
        section = "rows" if all(n.startswith("g_") for n in present) else present[0][2:]
        key = tuple(v for n, v in zip(names, values) if n in present)
        bucket = result[section].setdefault(key, _zero())
        prefix = _PREFIX[event]
        bucket[prefix], bucket[f"unique_{prefix}"] = int(total), int(unique)
    rows = [{**{d: _cell(v) for d, v in zip(group_by, k)}, **result["rows"][k]}
            for k in sorted(result["rows"], key=lambda k: tuple(str(v) for v in k))]
    hours = [{"hour": h, **result["hour"].get((h,), _zero())} for h in range(24)]
    weekdays = [{"weekday": WEEKDAYS[d - 1], **result["weekday"].get((d,), _zero())} for d in range(1, 8)]
    devices = [{"device": k[0], **v} for k, v in sorted(result["device"].items())]
    return {"rows": rows, "by_device": devices, "by_hour": hours, "by_weekday": weekdays}


# Conversions (POST /messages/{id}/conversions) are engagement too: "unique" = messages that converted.
_PREFIX = {"opened": "opens", "clicked": "clicks", "converted": "conversions"}


def _zero() -> dict:
    return {"opens": 0, "unique_opens": 0, "clicks": 0, "unique_clicks": 0, "conversions": 0,
            "unique_conversions": 0}


# --- Performance ------------------------------------------------------------------------------------

PERFORMANCE_DIMS = {"priority": "priority", "channel": "channel", "provider": "provider",
                    "tenant": "tenant_id::text", **_period_dims("day")}
FAILED = ("failed", "dead")


def _hist_sums(column: str) -> str:
    """ARRAY[sum(col[1]), …, sum(col[BUCKETS])]: histograms added in SQL with native sums (subscripts of a
    short inline array cost no detoasting), so a read returns one histogram per group."""
    return "ARRAY[" + ", ".join(f"coalesce(sum({column}[{k}]), 0)" for k in range(1, buckets.BUCKETS + 1)) + "]"


def _pcts(counts: list[int], prefix: str) -> dict:
    out = {}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        v = buckets.percentile([int(c) for c in counts], q)
        out[f"{prefix}_{name}_ms"] = None if v is None else round(v, 1)
    return out


def performance(*, period: Period, group_by: tuple[str, ...], tenant_id: Any = None) -> dict:
    """Queue wait (due → sent) and provider call time percentiles per group, failures by error code.

    Reads the daily outcome aggregate (delivery_outcomeday, written by the outcome path with each
    flush) through its unique key's leading `day` column: its cost grows with days × active keys, never
    with messages. Percentiles come from fixed log-spaced histograms (delivery.latency.buckets: the
    true value lies within a factor 1.259 of the one shown). `messages` counts the outcomes that ended a
    message in the period (sent, failed, dead); `retried` the transient failures that were retried.
    """
    where, params = _tenant(tenant_id)
    exprs = [PERFORMANCE_DIMS[d] for d in group_by]
    select = ", ".join(f"{x} AS d{i}" for i, x in enumerate(exprs))
    groups = ", ".join(str(i + 1) for i in range(len(exprs)))
    span = [period.start, period.end]
    sql = f"""
      SELECT {select + ', ' if select else ''}
             coalesce(sum(n) FILTER (WHERE outcome = 'sent'), 0), coalesce(sum(n) FILTER (WHERE outcome = ANY(%s)), 0),
             coalesce(sum(n) FILTER (WHERE outcome = 'retrying'), 0), {_hist_sums('wait_hist')}, {_hist_sums('call_hist')}
        FROM delivery_outcomeday WHERE day >= %s AND day <= %s{where}
       {'GROUP BY ' + groups if groups else ''}"""
    rows = []
    for row in stats._rows(sql, [list(FAILED), *span, *params]):
        key, (sent, failed, retried, wait, call) = row[:len(exprs)], row[len(exprs):]
        total = int(sent) + int(failed)
        if not total and not retried:
            continue
        rows.append({**{d: _cell(v) for d, v in zip(group_by, key)}, "messages": total, "sent": int(sent),
                     "failed": int(failed), "retried": int(retried),
                     "failure_pct": round(100.0 * int(failed) / total, 3) if total else None,
                     **_pcts(wait, "wait"), **_pcts(call, "call")})
    rows.sort(key=lambda r: tuple(str(r[d]) for d in group_by))
    codes_sql = f"""
      SELECT channel, provider, outcome, code, sum(n)::bigint FROM delivery_outcomeday
       WHERE day >= %s AND day <= %s{where} GROUP BY 1, 2, 3, 4"""
    attempts: dict[tuple, int] = {}
    failures: dict[tuple, int] = {}
    for channel, provider, outcome, code, n in stats._rows(codes_sql, [*span, *params]):
        attempts[(channel, provider)] = attempts.get((channel, provider), 0) + n
        if outcome in FAILED:
            failures[(channel, provider, code or "unknown")] = failures.get((channel, provider, code or "unknown"), 0) + n
    errors = [{"channel": c, "provider": p, "code": code, "n": n,
               "rate_pct": round(100.0 * n / attempts[(c, p)], 3)}
              for (c, p, code), n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"rows": rows, "errors_by_code": errors,
            "provider_calls": provider_calls(period=period, tenant_id=tenant_id),
            "percentile_resolution": {"bucket_ratio": round(buckets.RATIO, 4),
                                      "max_relative_error": round(buckets.RATIO - 1, 4)}}


def provider_calls(*, period: Period, tenant_id: Any = None) -> list[dict]:
    """Each provider's call time (p50/p90/p99, ms) over the period: the calls that decided an outcome."""
    where, params = _tenant(tenant_id)
    sql = f"""
      SELECT channel, provider, {_hist_sums('call_hist')} FROM delivery_outcomeday
       WHERE day >= %s AND day <= %s{where} AND call_hist IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"""
    return [{"channel": c, "provider": p, "calls": sum(int(x) for x in hist), **_pcts(hist, "call")}
            for c, p, hist in stats._rows(sql, [period.start, period.end, *params])]

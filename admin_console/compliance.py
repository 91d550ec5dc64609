"""The compliance report for a period (seed 004 GET /compliance/report).

Sources, each read through an index range on its time column:

* consents granted/withdrawn by source, STOP/START (source ``sms_keyword``), one-click requests
  (source ``one_click``, RFC 8058) and erasures (``erased_at``): preferences_consentrecord;
* suppressions by reason: preferences_suppression (``created_at``);
* time-to-honour of provider-reported unsubscribes: tracking_messageevent (``recorded_at`` − the
  provider's ``timestamp``; the suppression is written by the same processing step). Unsubscribes
  through our own link, one-click POST or STOP are honoured in the request's own transaction (0 s).
* bounce and complaint rates: the daily aggregate, against the alert thresholds the dashboard uses
  (COMMS_ALERT_HARD_BOUNCE_PCT 0.3 %, COMMS_ALERT_COMPLAINT_PCT 0.1 %), and Gmail's 0.3 % complaint
  ceiling (https://support.google.com/a/answer/81126).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from admin_console import stats
from admin_console.analytics import Period, _tenant, delivery

# Gmail's bulk-sender rule: stay under 0.1 % (COMMS_ALERT_COMPLAINT_PCT), never reach 0.3 %.
COMPLAINT_CEILING_PCT = 0.3


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 4) if whole else None


def report(*, period: Period, tenant_id: Any = None) -> dict:
    """Every figure of the report as plain data; `rows` is the flat (section, key, value) view for CSV."""
    where, params = _tenant(tenant_id)
    span = [period.since, period.until]
    consents = stats._rows(f"""
        SELECT action, source, count(*) FROM preferences_consentrecord
         WHERE at >= %s AND at < %s{where} GROUP BY 1, 2 ORDER BY 1, 2""", [*span, *params])
    erasures = stats._rows(f"""
        SELECT count(DISTINCT subject_hash) FROM preferences_consentrecord
         WHERE erased_at >= %s AND erased_at < %s{where}""", [*span, *params])[0][0]
    suppressions = stats._rows(f"""
        SELECT reason, channel, count(*) FROM preferences_suppression
         WHERE created_at >= %s AND created_at < %s{where} GROUP BY 1, 2 ORDER BY 1, 2""", [*span, *params])
    honour = stats._rows(f"""
        SELECT count(*), percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                 ORDER BY greatest(extract(epoch FROM recorded_at - timestamp), 0)),
               max(greatest(extract(epoch FROM recorded_at - timestamp), 0))
          FROM tracking_messageevent
         WHERE event_type = 'unsubscribed' AND recorded_at >= %s AND recorded_at < %s{where}""",
                         [*span, *params])[0]
    totals = {e: 0 for e in stats.COUNTED}
    for q in _quality(period, tenant_id):
        for e, n in q.counts.items():
            totals[e] = totals.get(e, 0) + n

    granted = [{"source": s, "n": n} for a, s, n in consents if a == "granted"]
    withdrawn = [{"source": s, "n": n} for a, s, n in consents if a == "withdrawn"]
    by_source = {(a, s): n for a, s, n in consents}
    honour_pct = honour[1] or [None, None]
    complaint_pct = _pct(totals["complained"], totals["sent"])
    bounce_pct = _pct(totals["bounced"], totals["sent"])
    data = {
        "consents": {"granted": granted, "withdrawn": withdrawn,
                     "granted_total": sum(r["n"] for r in granted),
                     "withdrawn_total": sum(r["n"] for r in withdrawn)},
        "unsubscribes": {
            "total": sum(r["n"] for r in withdrawn),
            "one_click": by_source.get(("withdrawn", "one_click"), 0),
            "provider_reported": honour[0],
            "honour_p50_seconds": _round(honour_pct[0]), "honour_p95_seconds": _round(honour_pct[1]),
            "honour_max_seconds": _round(honour[2]),
        },
        "sms_keywords": {"stop": by_source.get(("withdrawn", "sms_keyword"), 0),
                         "start": by_source.get(("granted", "sms_keyword"), 0)},
        "suppressions": [{"reason": r, "channel": c, "n": n} for r, c, n in suppressions],
        "erasures": erasures,
        "bounce_complaint": {
            "sent": totals["sent"], "hard_bounces": totals["bounced"], "complaints": totals["complained"],
            "hard_bounce_pct": bounce_pct, "complaint_pct": complaint_pct,
            "hard_bounce_limit_pct": settings.COMMS_ALERT_HARD_BOUNCE_PCT,
            "complaint_limit_pct": settings.COMMS_ALERT_COMPLAINT_PCT, "complaint_ceiling_pct": COMPLAINT_CEILING_PCT,
            "hard_bounce_ok": bounce_pct is None or bounce_pct < settings.COMMS_ALERT_HARD_BOUNCE_PCT,
            "complaint_ok": complaint_pct is None or complaint_pct < settings.COMMS_ALERT_COMPLAINT_PCT,
        },
    }
    data["rows"] = flat_rows(data)
    return data


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _quality(period: Period, tenant_id: Any) -> list[stats.Quality]:
    return [stats.Quality((), {k: v for k, v in row.items() if k in stats.COUNTED})
            for row in delivery(period=period, group_by=(), tenant_id=tenant_id)]


def flat_rows(data: dict) -> list[dict]:
    """(section, key, value) rows: the report as one CSV table."""
    rows: list[dict] = []
    add = lambda section, key, value: rows.append({"section": section, "key": key, "value": value})  # noqa: E731
    for action in ("granted", "withdrawn"):
        for r in data["consents"][action]:
            add(f"consent_{action}", r["source"], r["n"])
    for key, value in data["unsubscribes"].items():
        add("unsubscribes", key, value)
    for key, value in data["sms_keywords"].items():
        add("sms_keywords", key, value)
    for r in data["suppressions"]:
        add("suppressions", f"{r['reason']}/{r['channel']}", r["n"])
    add("erasures", "subjects", data["erasures"])
    for key, value in data["bounce_complaint"].items():
        add("bounce_complaint", key, value)
    return rows

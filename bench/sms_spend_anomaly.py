"""SMS spend anomaly on synthetic tenants: the hourly seasonal detector (series sms_spend:<tenant>)
against the former daily check (today so far > 3 x the median of the previous 7 days, floor 1.00).

    python -m bench.sms_spend_anomaly [--tenants 200] [--weeks 12] [--seed 1]

Each tenant sends a week-shaped SMS volume (day/night and weekend shape as bench/anomaly.py, a peak of
50-2,000 segments an hour, Poisson noise), 90 % to US numbers at 0.0079 and 10 % to GB at 0.04 a
segment. After two clean weeks, incidents are injected every 3-10 days: a leaked API key sending a
flat `factor` (2, 5, 20) x the tenant's mean hourly volume on top (a bot ignores office hours) for 2-12 hours.
Reported per method and factor: share of incidents detected, median and p90 delay (hours from the first
incident hour to the alert), extra spend before the alert, and false alarms per tenant-week on clean
hours. No database: the detector is tracking.anomaly with the parameters the service uses.
"""

from __future__ import annotations

import argparse
import random
import statistics
from datetime import timedelta

from bench.anomaly import START, _poisson, _shape
from tracking.anomaly import SMS_SPEND, State, hour_of_week, observe

US, GB = 0.0079, 0.04
MEAN_SHAPE = sum(_shape(h) for h in range(168)) / 168


def _tenant(rng: random.Random, *, hours: int, warm: int, factor: float) -> dict:
    peak = rng.uniform(50, 2000)
    incidents: list[tuple[int, int]] = []
    h = warm + rng.randint(24, 96)
    while h < hours - 14:
        incidents.append((h, rng.randint(2, 12)))
        h += rng.randint(72, 240)
    during = {t: start for start, length in incidents for t in range(start, start + length)}
    bot = factor * peak * MEAN_SHAPE  # a flat rate of `factor` x the mean hourly volume
    params, state = SMS_SPEND, State()
    days: list[float] = []
    today = 0.0
    fired_hourly: dict[int, int] = {}
    fired_daily: dict[int, int] = {}
    false_hourly = false_daily = 0
    extra_before: dict[int, float] = {}
    alerted_day = -1
    for t in range(hours):
        lam = peak * _shape(t) + (bot if t in during else 0.0)
        us, gb = _poisson(rng, 0.9 * lam), _poisson(rng, 0.1 * lam)
        amount, units = us * US + gb * GB, float(us + gb)
        start = during.get(t)
        if start is not None and start not in fired_hourly:
            extra_before[start] = extra_before.get(start, 0.0) + bot * (0.9 * US + 0.1 * GB)
        # hourly: the detector, judged at the end of each hour
        verdict = observe(state, value=amount, volume=units, slot=hour_of_week(START + timedelta(hours=t)),
                          params=params)
        if verdict.fire:
            if start is not None or (t - 1) in during:
                fired_hourly.setdefault(start if start is not None else during[t - 1], t)
            else:
                false_hourly += 1
        # daily: the former check, run every hour on today's spend so far
        if t % 24 == 0 and t:
            days.append(today)
            today = 0.0
        today += amount
        day = t // 24
        if len(days) >= 7 and alerted_day != day:
            median = statistics.median(days[-7:])
            if today > max(3 * median, 1.0):
                alerted_day = day
                recent = [s for s, length in incidents if s <= t < s + length + 24 and s // 24 <= day]
                if recent:
                    fired_daily.setdefault(recent[-1], t)
                else:
                    false_daily += 1
    return {"incidents": incidents, "hourly": fired_hourly, "daily": fired_daily, "false_hourly": false_hourly,
            "false_daily": false_daily, "extra_before": extra_before, "bot_cost": bot * (0.9 * US + 0.1 * GB)}


def _report(name: str, factor: float, results: list[dict], key: str, weeks: int) -> None:
    delays, missed, extra = [], 0, []
    for r in results:
        for start, _ in r["incidents"]:
            if start in r[key]:
                delay = r[key][start] - start
                delays.append(delay)
                extra.append(r["bot_cost"] * (delay + 1))
            else:
                missed += 1
    total = len(delays) + missed
    false = sum(r[f"false_{key}"] for r in results) / (len(results) * weeks)
    p90 = sorted(delays)[int(0.9 * (len(delays) - 1))] if delays else float("nan")
    print(f"{name:7s} x{factor:<4g} incidents {total:5d}  detected {len(delays) / total:6.1%}  "
          f"delay median {statistics.median(delays) if delays else float('nan'):.0f} h  p90 {p90} h  "
          f"leaked spend before the alert median {statistics.median(extra) if extra else float('nan'):.2f}  "
          f"false alarms/tenant-week {false:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    hours, warm = args.weeks * 168, 2 * 168
    print(f"{args.tenants} tenants per factor, {args.weeks} weeks hourly; judged weeks {args.weeks - 1}")
    for factor in (2.0, 5.0, 20.0):
        rng = random.Random(args.seed + int(factor))
        results = [_tenant(rng, hours=hours, warm=warm, factor=factor) for _ in range(args.tenants)]
        _report("hourly", factor, results, "hourly", args.weeks - 1)
        _report("daily", factor, results, "daily", args.weeks - 1)


if __name__ == "__main__":
    main()

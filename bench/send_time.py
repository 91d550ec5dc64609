"""Send-time optimisation on a synthetic population whose best hours are known.

    python bench/send_time.py [N recipients, default 5000] [window hours, default 24]

Each synthetic recipient has a true engagement curve over the 168 hours of the week: a daily peak
at a personal hour (drawn from a population mix: 40 % mornings ~08:00, 30 % evenings ~20:00,
20 % lunch ~12:30, 10 % anywhere), ±1.5 h wide, weaker at weekends for the morning type, on a
small floor. Their history is m opens/clicks (m ~ geometric, mean 8, some with none) drawn from
that curve. For a random "now" we pick each recipient's best hour within the window with
tracking.send_time (smoothing strength k) and score it against the truth:

* hit: the chosen hour is the true best allowed hour in the window (exact), or within ±1 h;
* lift: mean true engagement probability at the chosen hour over that of sending now
  (the oracle's lift, choosing with the true curve, is the ceiling).

No quiet hours here (they only remove candidates); unit tests cover them.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://x@127.0.0.1:1/x")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
import django  # noqa: E402

django.setup()
from tracking.send_time import HOURS_OF_WEEK, best_send_time, hour_of_week, smoothed_profile  # noqa: E402


def true_curve(rng: random.Random) -> list[float]:
    kind = rng.random()
    if kind < 0.4:
        peak, weekend = rng.gauss(8, 1), 0.5
    elif kind < 0.7:
        peak, weekend = rng.gauss(20, 1), 1.0
    elif kind < 0.9:
        peak, weekend = rng.gauss(12.5, 0.7), 0.7
    else:
        peak, weekend = rng.uniform(0, 24), 1.0
    curve = []
    for h in range(HOURS_OF_WEEK):
        d = abs((h % 24) - peak)
        d = min(d, 24 - d)
        amp = 0.30 * (weekend if h // 24 >= 5 else 1.0)
        curve.append(0.01 + amp * math.exp(-d * d / (2 * 1.5 ** 2)))
    return curve


def history(rng: random.Random, curve: list[float]) -> list[int]:
    counts = [0] * HOURS_OF_WEEK
    m = 0
    while rng.random() > 1 / 8.0:  # geometric, mean ~7
        m += 1
    for h in rng.choices(range(HOURS_OF_WEEK), weights=curve, k=m):
        counts[h] += 1
    return counts


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    rng = random.Random(22)
    people = []
    for _ in range(n):
        curve = true_curve(rng)
        people.append((curve, history(rng, curve)))
    population = [sum(own[h] for _, own in people) for h in range(HOURS_OF_WEEK)]
    base = datetime(2026, 12, 7, tzinfo=timezone.utc)
    nows = [base + timedelta(minutes=rng.randrange(7 * 24 * 60)) for _ in range(n)]
    print(f"{n} recipients, window {window} h, median history "
          f"{statistics.median(sum(o) for _, o in people):.0f} events, "
          f"{sum(1 for _, o in people if not sum(o)) / n:.0%} with none")
    print(f"{'strategy':<22}{'exact hit':>10}{'±1 h hit':>10}{'lift vs now':>13}")
    strategies = [("oracle (true curve)", None), ("population only", "pop"), ("own counts (k=0)", 0.0),
                  ("smoothed k=4, no pool", -4.0), ("pooled k=1", 1.0), ("pooled k=4", 4.0),
                  ("pooled k=16", 16.0), ("pooled k=64", 64.0)]
    for name, k in strategies:
        exact = near = 0
        chosen_p, now_p = [], []
        for (curve, own), now in zip(people, nows):
            truth = best_send_time(curve, now=now, within_hours=window)
            if k is None:
                profile = curve
            elif k == "pop":
                profile = smoothed_profile([0] * HOURS_OF_WEEK, population)
            elif k == 0.0:  # own raw counts only; no history at all: send now
                profile = list(own) if sum(own) else [float(i == hour_of_week(now)) for i in range(HOURS_OF_WEEK)]
            else:
                profile = smoothed_profile(own, population, prior_events=abs(k), pool=k > 0)
            pick = best_send_time(profile, now=now, within_hours=window)
            diff = abs((pick - truth).total_seconds()) / 3600
            exact += diff < 1
            near += diff < 2
            chosen_p.append(curve[hour_of_week(pick)])
            now_p.append(curve[hour_of_week(now)])
        lift = statistics.mean(chosen_p) / statistics.mean(now_p)
        print(f"{name:<22}{exact / n:>10.1%}{near / n:>10.1%}{lift:>12.2f}x")


if __name__ == "__main__":
    main()

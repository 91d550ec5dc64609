"""Anomaly detector on synthetic hourly series with injected incidents: detection delay and false alarms.

    python -m bench.anomaly [--weeks 12] [--series 200] [--k 4.0] [--seed 1]

Each series is a week-shaped count (day/night and weekend shape, random scale, Poisson noise) or a
failure rate (binomial on a seasonal volume). After a clean warm-up, incidents are injected at random
hours: a count spike (x3), a count drop (x0.2), a failure-rate jump (base -> base + 5 points), each
lasting 3-8 hours. Reported: share of incidents detected, median and p90 delay (hours from the first
incident hour to the alert), and false alarms per series-week on the clean hours. No database.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from datetime import datetime, timedelta, timezone

from tracking.anomaly import Params, State, hour_of_week, observe

START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday


def _shape(h: int) -> float:
    day, hour = divmod(h % 168, 24)
    daily = 0.15 + 0.85 * math.exp(-((hour - 13) ** 2) / 18.0)
    return daily * (0.4 if day >= 5 else 1.0)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _run(rng: random.Random, *, kind: str, hours: int, warm: int, k: float) -> tuple[list[int], list[int], int]:
    """(delays of detected incidents, missed incidents as -1, false alarms)."""
    scale = rng.uniform(200, 5000)
    base_rate = rng.uniform(0.005, 0.03)
    incidents: list[tuple[int, int]] = []
    h = warm + rng.randint(24, 96)
    while h < hours - 12:
        incidents.append((h, rng.randint(3, 8)))
        h += rng.randint(72, 240)
    in_incident = {t: start for start, length in incidents for t in range(start, start + length)}
    params = Params(k=k, direction="up" if kind == "rate" else "both", is_rate=kind == "rate",
                    warmup=24 if kind == "rate" else 168)
    state = State()
    first_fire: dict[int, int] = {}
    false_alarms = 0
    kind_factor = {"spike": 3.0, "drop": 0.2}
    for t in range(hours):
        at = START + timedelta(hours=t)
        lam = scale * _shape(t)
        start = in_incident.get(t)
        if kind == "rate":
            volume = float(_poisson(rng, lam))
            p = base_rate + (0.05 if start is not None else 0.0)
            value = (sum(1 for _ in range(int(volume)) if rng.random() < p) / volume) if volume else 0.0
        else:
            value = float(_poisson(rng, lam * (kind_factor[kind] if start is not None else 1.0)))
            volume = value
        verdict = observe(state, value=value, volume=volume, slot=hour_of_week(at), params=params)
        if verdict.fire:
            if start is not None or (t - 1) in in_incident:
                first_fire.setdefault(start if start is not None else in_incident[t - 1], t)
            else:
                false_alarms += 1
    delays = [first_fire[s] - s if s in first_fire else -1 for s, _ in incidents]
    return [d for d in delays if d >= 0], [d for d in delays if d < 0], false_alarms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--k", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    hours, warm = args.weeks * 168, 2 * 168
    print(f"{args.series} series per kind, {args.weeks} weeks hourly, k={args.k}, persistence=2")
    for kind in ("spike", "drop", "rate"):
        delays: list[int] = []
        missed = false_alarms = 0
        for _ in range(args.series):
            d, m, f = _run(rng, kind=kind, hours=hours, warm=warm, k=args.k)
            delays += d
            missed += len(m)
            false_alarms += f
        total = len(delays) + missed
        weeks = args.series * (args.weeks - 1)  # judged weeks (the first is the warm-up)
        p90 = sorted(delays)[int(0.9 * (len(delays) - 1))] if delays else float("nan")
        print(f"{kind:6s} incidents {total:5d}  detected {len(delays) / total:6.1%}  "
              f"delay median {statistics.median(delays) if delays else float('nan'):.0f} h  p90 {p90} h  "
              f"false alarms/series-week {false_alarms / weeks:.4f}")


if __name__ == "__main__":
    main()

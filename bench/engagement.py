"""Engagement scores and channel recommendation on a synthetic population with a known truth.

    python -m bench.engagement [--people 5000] [--seed 1]

Each synthetic person has a true preferred channel among email/sms/push/in_app (engagement
probability 0.25-0.6 there, 0.02-0.12 elsewhere), an activity level, and may have lapsed (stopped
engaging 45-120 days ago). Six months of sends are drawn (channels mixed, 10-60 messages per person);
the scores are computed by tracking.scores.score_of on the first five months, and judged on the
held-out last month:
  * channel recommendation: share of people whose recommended channel is their true one, against
    "the channel they were sent most on" and the listed default (email);
  * scores: AUC of the engagement score for "engages at least once in the held-out month", and the
    mean held-out engagement rate per score quintile.
No database.
"""

from __future__ import annotations

import argparse
import os
import random
from datetime import datetime, timedelta, timezone

import django

# The scoring is pure, but its module sits in a Django app: load the settings (no connection is made).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://x@127.0.0.1:1/x")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
django.setup()

from tracking.scores import ChannelHistory, score_of  # noqa: E402

CHANNELS = ("email", "sms", "push", "in_app")
NOW = datetime(2026, 7, 1, tzinfo=timezone.utc)
HALF_LIFE = 30.0


def _auc(pairs: list[tuple[float, bool]]) -> float:
    pairs.sort(key=lambda p: p[0])
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):  # average ranks over ties
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        rank_sum += sum(1 for k in range(i, j) if pairs[k][1]) * (i + j + 1) / 2
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg) if pos and neg else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cut = NOW - timedelta(days=30)
    right = most_sent_right = default_right = judged = 0
    pairs: list[tuple[float, bool]] = []
    quint: list[tuple[float, float]] = []
    for _ in range(args.people):
        best = rng.choice(CHANNELS)
        p = {c: (rng.uniform(0.25, 0.6) if c == best else rng.uniform(0.02, 0.12)) for c in CHANNELS}
        mix = [rng.random() + (0.6 if c == "email" else 0.0) for c in CHANNELS]  # senders favour email
        lapsed_at = NOW - timedelta(days=rng.uniform(45, 120)) if rng.random() < 0.3 else None
        history: dict[str, ChannelHistory] = {}
        last = None
        future_sent = future_engaged = 0
        for _ in range(rng.randint(10, 60)):
            channel = rng.choices(CHANNELS, weights=mix)[0]
            at = NOW - timedelta(days=rng.uniform(0, 180))
            engaged = rng.random() < p[channel] and (lapsed_at is None or at < lapsed_at)
            if at >= cut:
                future_sent += 1
                future_engaged += engaged
                continue
            h = history.setdefault(channel, ChannelHistory())
            w = 0.5 ** ((cut - at).total_seconds() / 86400 / HALF_LIFE)
            h.sent += 1
            h.sent_w += w
            if engaged:
                h.engaged += 1
                h.engaged_w += w
                last = max(last, at) if last else at
        score, _, recommended = score_of(history, last, now=cut, half_life_days=HALF_LIFE)
        if recommended:
            judged += 1
            right += recommended == best
            most_sent_right += max(history, key=lambda c: history[c].sent) == best
            default_right += best == "email"
        if future_sent:
            pairs.append((score, future_engaged > 0))
            quint.append((score, future_engaged / future_sent))
    quint.sort()
    size = len(quint) // 5
    rates = [sum(r for _, r in quint[i * size:(i + 1) * size]) / size for i in range(5)]
    print(f"{args.people} people, 6 months, held-out last 30 days; {judged} with a recommendation "
          f"({judged / args.people:.1%})")
    print(f"channel recommendation accuracy {right / judged:.1%}  (most-sent channel {most_sent_right / judged:.1%}, "
          f"always email {default_right / judged:.1%}, chance 25%)")
    print(f"engagement score AUC for 'engages in the held-out month' {_auc(pairs):.3f}")
    print("held-out engagement rate by score quintile (low->high): " + "  ".join(f"{r:.3f}" for r in rates))


if __name__ == "__main__":
    main()

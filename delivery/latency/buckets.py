"""Fixed log-spaced latency buckets, and percentiles read back from bucket counts.

Bucket 0 holds [0, 1] ms; bucket k (1 … 80) holds (10^((k-1)/10), 10^(k/10)] ms, ten per decade,
so each bound is 1.259× the one below; bucket 81 holds everything above 10^8 ms (~28 h). Every
histogram is a dense array of BUCKETS counts, so histograms add element-wise (the upsert merges them so;
a read sums each subscript). A percentile read from it lies in the same bucket as the true value, hence
within a factor RATIO (±26 %) of it between 1 ms and 28 h, and within 1 ms below 1 ms; inside a bucket
it is interpolated log-linearly, which for smooth distributions lands much closer (docs/insight.md).
"""

from __future__ import annotations

import math

PER_DECADE = 10
BUCKETS = 82
RATIO = 10 ** (1 / PER_DECADE)
TOP_MS = 10.0 ** ((BUCKETS - 2) / PER_DECADE)


def bucket_of(ms: float) -> int:
    """The bucket a latency (ms) falls in; negative (clock skew) counts as 0."""
    if ms <= 1.0:
        return 0
    return min(BUCKETS - 1, math.ceil(PER_DECADE * math.log10(ms) - 1e-9))


def bounds(k: int) -> tuple[float, float]:
    """(lower, upper) bound of bucket k in ms; the last bucket's upper bound is infinite."""
    if k == 0:
        return 0.0, 1.0
    if k == BUCKETS - 1:
        return TOP_MS, math.inf
    return 10.0 ** ((k - 1) / PER_DECADE), 10.0 ** (k / PER_DECADE)


def histogram(values_ms: list[float]) -> list[int]:
    counts = [0] * BUCKETS
    for v in values_ms:
        counts[bucket_of(v)] += 1
    return counts


def percentile(counts: list[int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of the samples counted in `counts`, in ms; None when empty.

    The bucket holding the sample of rank q·n is exact; the position inside it is interpolated
    log-linearly (linearly in bucket 0); the open top bucket answers its lower bound."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for k, c in enumerate(counts):
        if c and seen + c >= rank:
            frac = min(1.0, max(0.0, (rank - seen) / c))
            lo, hi = bounds(k)
            if k == 0:
                return hi * frac
            if k == BUCKETS - 1:
                return lo
            return lo * (hi / lo) ** frac
        seen += c
    return bounds(BUCKETS - 1)[0]

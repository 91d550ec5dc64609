"""Anomaly detection on hourly series: a seasonal EWMA baseline and a persistence rule (AI-COM-007/011).

Why this model: the series comms watches (send rate, failure rate per provider, bounce/complaint rate
per template and campaign, queue age per priority) have a strong hour-of-week shape (a Monday 09:00
newsletter, quiet nights) and drift slowly. A level kept by an EWMA times one multiplicative factor per
hour of the week (168 slots, each an EWMA too) follows both; the spread is an EWMA of squared residuals
with a floor from the counting noise (Poisson for counts, binomial for rates), so a thin hour does not
look like an incident. A point is "out" when it sits more than ``k`` sigma from the expected value with
enough volume; an alert needs ``persistence`` consecutive out points (one noisy hour alarms nobody).
Out points do not teach the baseline, so a long incident does not become the new normal.

This module is pure (no database): ``tracking.services.anomaly`` feeds it from the aggregates and keeps
the state; ``bench/anomaly.py`` replays synthetic series with injected incidents through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

SLOTS = 168  # hours in a week


@dataclass(frozen=True)
class Params:
    """Tuning per series kind (defaults measured by bench/anomaly.py, docs/insight.md)."""

    k: float = 4.0              # sigmas from the baseline that count as "out"
    persistence: int = 2        # consecutive out points before an alert
    min_volume: float = 50.0    # a rate needs this many attempts in the hour; a count this expected value
    warmup: int = 168           # points before any judgement (a week: every hour-of-week slot seen once)
    alpha: float = 0.1          # level EWMA weight
    gamma: float = 0.3          # seasonal factor EWMA weight (one update per week per slot)
    beta: float = 0.05          # residual variance EWMA weight
    direction: str = "up"       # "up", "down" or "both": which departures are incidents
    is_rate: bool = False       # value is a proportion of `volume` (binomial floor) else a count (Poisson)
    per_unit: bool = False      # value is an amount over `volume` counted units (money over SMS segments):
                                # the floor is the units' relative Poisson noise, expected / sqrt(units)
                                # (a count's sqrt(expected) would depend on the currency)


# SMS spend per tenant and hour (value: the hour's spend; volume: its segments). 1.00 of spend is the
# least an hour must reach to be judged, so a tenant's first few messages alarm nobody. Here (pure) so
# bench/sms_spend_anomaly.py replays exactly what the service runs.
SMS_SPEND = Params(direction="up", per_unit=True, min_volume=1.0)


@dataclass
class State:
    """What a series remembers between hours (stored as JSON by the service)."""

    level: float = 0.0
    var: float = 0.0
    season: list[float] = field(default_factory=lambda: [1.0] * SLOTS)
    n: int = 0
    run: int = 0                # consecutive out points so far
    alerting: bool = False

    def to_json(self) -> dict:
        return {"level": self.level, "var": self.var, "season": [round(s, 4) for s in self.season],
                "n": self.n, "run": self.run, "alerting": self.alerting}

    @classmethod
    def from_json(cls, data: dict | None) -> "State":
        if not data:
            return cls()
        season = list(data.get("season") or [1.0] * SLOTS)
        return cls(level=float(data.get("level", 0.0)), var=float(data.get("var", 0.0)),
                   season=season if len(season) == SLOTS else [1.0] * SLOTS, n=int(data.get("n", 0)),
                   run=int(data.get("run", 0)), alerting=bool(data.get("alerting", False)))


@dataclass(frozen=True)
class Verdict:
    """The judgement of one point, with the evidence an alert shows."""

    observed: float
    expected: float
    sigma: float
    z: float
    volume: float
    out: bool
    fire: bool        # this point opens an alert (persistence reached, none open)
    recover: bool     # this point ends an open alert

    def evidence(self) -> dict:
        return {"observed": round(self.observed, 6), "baseline": round(self.expected, 6),
                "sigma": round(self.sigma, 6), "z": round(self.z, 2), "volume": self.volume}


def hour_of_week(at: datetime) -> int:
    """0 = Monday 00:00 UTC … 167 = Sunday 23:00 UTC."""
    return at.weekday() * 24 + at.hour


def _noise_floor(expected: float, volume: float, params: Params) -> float:
    if params.is_rate:
        p = min(max(expected, 1e-3), 0.999)
        return math.sqrt(p * (1 - p) / max(volume, 1.0))
    if params.per_unit:
        # min_volume keeps a zero baseline (a dormant tenant) from having no spread at all
        return max(expected, params.min_volume) / math.sqrt(max(volume, 1.0))
    return math.sqrt(max(expected, 1.0))


def observe(state: State, *, value: float, volume: float, slot: int, params: Params) -> Verdict:
    """Judge one hourly point against the baseline, then learn from it (little if it was out)."""
    season = state.season[slot] if state.n else 1.0
    expected = state.level * season if state.n else value
    sigma = max(math.sqrt(state.var), _noise_floor(expected, volume, params))
    z = (value - expected) / sigma if sigma > 0 else 0.0
    enough = volume >= params.min_volume if params.is_rate else max(value, expected) >= params.min_volume
    departed = {"up": z > params.k, "down": z < -params.k, "both": abs(z) > params.k}[params.direction]
    out = state.n >= params.warmup and enough and departed
    state.run = state.run + 1 if out else 0
    fire = out and state.run >= params.persistence and not state.alerting
    recover = state.alerting and not out
    if fire:
        state.alerting = True
    if recover:
        state.alerting = False
    # Out points teach at a quarter of the weight: an incident does not become the new normal within
    # its hours, but a lasting change of traffic (a new customer) is learnt within days.
    # A rate measured on a thin hour (5 of 10 failed) teaches nothing either: it would inflate sigma.
    if enough or not params.is_rate or state.n == 0:
        _learn(state, value=value, slot=slot, params=params, weight=0.25 if out else 1.0)
    return Verdict(observed=value, expected=expected, sigma=sigma, z=z, volume=volume, out=out, fire=fire,
                   recover=recover)


def _learn(state: State, *, value: float, slot: int, params: Params, weight: float = 1.0) -> None:
    if state.n == 0 and params.is_rate:
        state.level, state.n = value, 1
        return
    season = state.season[slot]
    resid = value - state.level * season
    if state.n < SLOTS and not params.is_rate:
        # First week: keep the raw values in the slots, then set the level to their mean and each
        # factor to its ratio (an EWMA from 1.0, or a ratio to a running mean that has not settled,
        # leaves slots wrong for weeks).
        state.season[slot] = value
        state.level += (value - state.level) / (state.n + 1)
        state.n += 1
        if state.n == SLOTS:
            mean = sum(state.season) / SLOTS
            state.level = mean
            state.season = [min(v / mean, 20.0) if mean > 1e-9 else 1.0 for v in state.season]
            state.var = 0.0  # the counting-noise floor serves until residuals accumulate
        return
    deseasoned = value / season if season > 1e-6 else value
    state.level += weight * params.alpha * (deseasoned - state.level)
    if state.level > 1e-9 and not params.is_rate and weight == 1.0:
        # An out point never moves its slot's factor: it would come back as a false alarm a week later.
        # Rates carry no weekly shape worth a factor (a failure rate is a rate at any hour); counts do.
        state.season[slot] += weight * params.gamma * (value / state.level - state.season[slot])
        state.season[slot] = min(max(state.season[slot], 0.0), 20.0)
    state.var = resid * resid if state.n == 1 else state.var + weight * params.beta * (resid * resid - state.var)
    state.n += 1

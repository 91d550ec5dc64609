"""A/B statistics on counts alone: Bayesian probability to be best and a two-proportion z-test.

Pure functions over (successes, trials) per variant, no database and no numpy, so experiments
(tracking's per-variant metric rows) and campaign variants share one implementation.

* Bayesian: each variant's rate is Beta(1 + successes, 1 + failures) — the Beta–Binomial model
  with a uniform prior. P(best) is estimated by seeded Monte Carlo draws (deterministic for the
  same counts); for two variants the exact closed form (Evan Miller, "Formulas for Bayesian A/B
  testing", 2015) is also available and the tests hold the Monte Carlo to it.
* Frequentist: the pooled two-proportion z-test, two-sided (p-value from math.erf), and the
  per-arm sample size needed to detect a given absolute lift at α and power (Fleiss, *Statistical
  Methods for Rates and Proportions*, eq. 4.14 without continuity correction).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Arm:
    key: str
    successes: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None


def normal_cdf(z: float) -> float:
    """Φ(z) through the error function (Abramowitz & Stegun 7.1; exact to float precision)."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _check(arms: list[Arm]) -> None:
    for arm in arms:
        if arm.trials < 0 or arm.successes < 0 or arm.successes > arm.trials:
            raise ValueError(f"variant {arm.key}: need 0 <= successes <= trials")


def prob_best_monte_carlo(arms: list[Arm], *, draws: int = 20000, seed: int = 22) -> dict[str, float]:
    """P(variant has the highest true rate) under Beta(1+s, 1+f) posteriors, by seeded sampling."""
    _check(arms)
    if not arms:
        return {}
    rng = random.Random(seed)
    wins = dict.fromkeys((a.key for a in arms), 0)
    params = [(a.key, 1 + a.successes, 1 + a.trials - a.successes) for a in arms]
    for _ in range(draws):
        best_key, best = "", -1.0
        for key, alpha, beta in params:
            x = rng.betavariate(alpha, beta)
            if x > best:
                best_key, best = key, x
        wins[best_key] += 1
    return {key: n / draws for key, n in wins.items()}


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_b_beats_a(a: Arm, b: Arm) -> float:
    """Exact P(p_B > p_A) for Beta(1+s,1+f) posteriors (Evan Miller 2015); O(successes of B)."""
    _check([a, b])
    alpha_a, beta_a = 1 + a.successes, 1 + a.trials - a.successes
    alpha_b, beta_b = 1 + b.successes, 1 + b.trials - b.successes
    total = 0.0
    for i in range(alpha_b):
        total += math.exp(_lbeta(alpha_a + i, beta_a + beta_b) - math.log(beta_b + i)
                          - _lbeta(1 + i, beta_b) - _lbeta(alpha_a, beta_a))
    return min(1.0, max(0.0, total))


@dataclass(frozen=True)
class ZTest:
    z: float | None
    p_value: float | None
    lift: float | None  # absolute difference b - a


def two_proportion_z(a: Arm, b: Arm) -> ZTest:
    """Pooled two-proportion z-test, two-sided; None where a variant has no trials or the pool is 0/1."""
    _check([a, b])
    if not a.trials or not b.trials:
        return ZTest(None, None, None)
    pa, pb = a.successes / a.trials, b.successes / b.trials
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    if se == 0:
        return ZTest(None, None, pb - pa)
    z = (pb - pa) / se
    return ZTest(z, 2 * (1 - normal_cdf(abs(z))), pb - pa)


def sample_size_per_arm(*, baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Trials each variant needs to detect an absolute lift ``mde`` over ``baseline`` (two-sided)."""
    p1, p2 = baseline, baseline + mde
    if not (0 < p1 < 1 and 0 < p2 < 1) or mde == 0:
        raise ValueError("baseline and baseline + mde must lie strictly between 0 and 1, mde non-zero")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power lie strictly between 0 and 1")
    z_a, z_b = _NORMAL.inv_cdf(1 - alpha / 2), _NORMAL.inv_cdf(power)
    p_bar = (p1 + p2) / 2
    num = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num * num / (mde * mde))


def analyse(arms: list[Arm], *, control: str | None = None, mde: float = 0.02, alpha: float = 0.05,
            power: float = 0.8, draws: int = 20000, seed: int = 22) -> dict:
    """Per variant: rate, P(best), and against the control the z-test and sample reached vs needed.

    The control is the named variant or the first one. ``significant_winner`` is the variant with the
    highest rate when its test against the control (or the control's against every other) has
    p < α and each arm reached the sample needed; otherwise None — the caller's tie rule decides.
    """
    _check(arms)
    if not arms:
        return {"variants": [], "control": None, "significant_winner": None, "needed_per_variant": None}
    keys = [a.key for a in arms]
    if control is not None and control not in keys:
        raise KeyError(control)
    ctrl = next(a for a in arms if a.key == (control or keys[0]))
    best = prob_best_monte_carlo(arms, draws=draws, seed=seed)
    # The control's observed rate is the baseline, kept off 0 and 1 (a 0 % control would need no
    # sample at all by the formula; 1 % is the conservative floor). No control data: nothing needed known.
    needed = None
    if ctrl.rate is not None:
        try:
            needed = sample_size_per_arm(baseline=min(max(ctrl.rate, 0.01), 0.99 - mde), mde=mde, alpha=alpha,
                                         power=power)
        except ValueError:
            needed = None
    rows = []
    for arm in arms:
        test = two_proportion_z(ctrl, arm) if arm is not ctrl else ZTest(None, None, 0.0)
        rows.append({"key": arm.key, "successes": arm.successes, "trials": arm.trials, "rate": arm.rate,
                     "prob_best": round(best[arm.key], 4), "z": test.z, "p_value": test.p_value,
                     "lift_vs_control": test.lift, "sample_reached": bool(needed and arm.trials >= needed)})
    winner = _significant_winner(rows, ctrl.key, alpha)
    return {"variants": rows, "control": ctrl.key, "significant_winner": winner, "needed_per_variant": needed,
            "mde": mde, "alpha": alpha, "power": power}


def _significant_winner(rows: list[dict], control: str, alpha: float) -> str | None:
    rated = [r for r in rows if r["rate"] is not None]
    if len(rated) < 2 or not all(r["sample_reached"] for r in rated):
        return None
    top = max(rated, key=lambda r: r["rate"])
    if top["key"] == control:
        others = [r for r in rated if r["key"] != control]
        return control if all(r["p_value"] is not None and r["p_value"] < alpha for r in others) else None
    return top["key"] if top["p_value"] is not None and top["p_value"] < alpha else None

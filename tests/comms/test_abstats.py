"""A/B statistics against worked values (textbook z-test, Fleiss sample size, exact Bayesian form)."""

import math

import pytest

from comms.campaigns.abstats import (Arm, analyse, prob_b_beats_a, prob_best_monte_carlo, sample_size_per_arm,
                                     two_proportion_z)


def test_z_test_matches_worked_example():
    # 200/1000 vs 250/1000: pooled p = 0.225, se = sqrt(.225*.775*2/1000) = 0.018675, z = 2.677, p = 0.0074.
    t = two_proportion_z(Arm("A", 200, 1000), Arm("B", 250, 1000))
    assert t.z == pytest.approx(2.6774, abs=1e-3)
    assert t.p_value == pytest.approx(0.00742, abs=2e-4)
    assert t.lift == pytest.approx(0.05)


def test_z_test_no_difference_and_empty_arms():
    assert two_proportion_z(Arm("A", 50, 500), Arm("B", 50, 500)).p_value == pytest.approx(1.0)
    assert two_proportion_z(Arm("A", 0, 0), Arm("B", 1, 10)).p_value is None
    assert two_proportion_z(Arm("A", 0, 10), Arm("B", 0, 10)).p_value is None  # zero variance


def test_sample_size_fleiss():
    # 10% -> 12%, alpha .05 two-sided, power .8: (1.96*sqrt(2*.11*.89) + .8416*sqrt(.09+.1056))^2/.02^2 = 3841.
    assert sample_size_per_arm(baseline=0.10, mde=0.02) == 3841
    # 20% -> 25%: 1094 (same formula; larger effect, far fewer trials).
    assert sample_size_per_arm(baseline=0.20, mde=0.05) == 1094
    with pytest.raises(ValueError):
        sample_size_per_arm(baseline=0.99, mde=0.05)


def test_exact_bayes_symmetry_and_known_value():
    a, b = Arm("A", 10, 100), Arm("B", 10, 100)
    assert prob_b_beats_a(a, b) == pytest.approx(0.5, abs=1e-9)
    # Beta(2,1) vs Beta(1,2) (1/1 vs 0/1): P(B > A) = 1/6 by direct integration.
    assert prob_b_beats_a(Arm("A", 1, 1), Arm("B", 0, 1)) == pytest.approx(1 / 6, abs=1e-9)
    assert prob_b_beats_a(Arm("A", 200, 1000), Arm("B", 250, 1000)) > 0.99


def test_monte_carlo_agrees_with_exact_and_is_seeded():
    a, b = Arm("A", 120, 1000), Arm("B", 140, 1000)
    exact = prob_b_beats_a(a, b)
    mc = prob_best_monte_carlo([a, b], draws=20000, seed=1)
    assert mc["B"] == pytest.approx(exact, abs=0.01)
    assert math.isclose(mc["A"] + mc["B"], 1.0)
    assert prob_best_monte_carlo([a, b], draws=2000, seed=5) == prob_best_monte_carlo([a, b], draws=2000, seed=5)


def test_analyse_winner_and_tie():
    big = analyse([Arm("A", 400, 4000), Arm("B", 560, 4000)], mde=0.02)
    assert big["needed_per_variant"] == 3841
    assert big["significant_winner"] == "B"
    assert big["variants"][1]["prob_best"] > 0.99
    small = analyse([Arm("A", 10, 100), Arm("B", 14, 100)], mde=0.02)
    assert small["significant_winner"] is None  # sample not reached
    assert small["variants"][0]["sample_reached"] is False
    with pytest.raises(KeyError):
        analyse([Arm("A", 1, 2)], control="Z")
    with pytest.raises(ValueError):
        analyse([Arm("A", 3, 2)])


def test_a_zero_rate_control_still_has_a_sample_size():
    # Control 0/30: the baseline floors at 1 %, so 1 % -> 41 % needs 16 per arm and a 0/30 vs 30/30 split wins.
    result = analyse([Arm("A", 0, 30), Arm("B", 30, 30)], mde=0.4)
    assert result["needed_per_variant"] == 16 and result["significant_winner"] == "B"

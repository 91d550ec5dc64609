"""Send-time optimisation: smoothing, the window, quiet hours (pure functions, known answers)."""

from datetime import datetime, time, timezone

import pytest

from tracking.send_time import HOURS_OF_WEEK, best_send_time, hour_of_week, smoothed_profile

MONDAY = datetime(2026, 12, 7, 6, 30, tzinfo=timezone.utc)  # a Monday


def _peak(h: int, n: int = 10) -> list[int]:
    counts = [0] * HOURS_OF_WEEK
    counts[h] = n
    return counts


def test_hour_of_week():
    assert hour_of_week(MONDAY) == 6
    assert hour_of_week(datetime(2026, 12, 13, 23, 59, tzinfo=timezone.utc)) == 167


def test_no_history_follows_population_and_history_overrides_it():
    population = _peak(9, 1000)  # the tenant reads at 09:00 Monday
    empty = smoothed_profile([0] * HOURS_OF_WEEK, population)
    assert best_send_time(empty, now=MONDAY, within_hours=24).hour == 9
    own = _peak(18, 6)  # this person reads at 18:00 Monday
    assert best_send_time(smoothed_profile(own, population), now=MONDAY, within_hours=24).hour == 18
    assert sum(smoothed_profile(own, population, pool=False)) == pytest.approx(1.0)


def test_pooling_carries_a_habit_to_other_days():
    own = _peak(2 * 24 + 20, 3)  # Wednesday 20:00 only
    profile = smoothed_profile(own, [1] * HOURS_OF_WEEK)
    # Monday 06:30 with a 24 h window: Monday 20:00 is best thanks to the daily pooling.
    assert best_send_time(profile, now=MONDAY, within_hours=24) == MONDAY.replace(hour=20, minute=0)
    flat = smoothed_profile(own, [1] * HOURS_OF_WEEK, pool=False)
    assert best_send_time(flat, now=MONDAY, within_hours=24) == MONDAY  # no signal in window: now


def test_window_and_current_hour():
    profile = smoothed_profile(_peak(6, 5), [1] * HOURS_OF_WEEK)
    assert best_send_time(profile, now=MONDAY, within_hours=24) == MONDAY  # best is the current hour: now
    late = smoothed_profile(_peak(30, 5), [1] * HOURS_OF_WEEK, pool=False)  # Tuesday 06:00
    assert best_send_time(late, now=MONDAY, within_hours=12) == MONDAY  # outside the window
    assert best_send_time(late, now=MONDAY, within_hours=24).day == 8
    with pytest.raises(ValueError):
        best_send_time(profile, now=MONDAY, within_hours=24 * 8)


def test_quiet_hours_skip_and_wrap():
    profile = smoothed_profile(_peak(21, 5), [1] * HOURS_OF_WEEK)  # loves 21:00
    quiet = (time(21), time(8), "UTC")
    pick = best_send_time(profile, now=MONDAY, within_hours=24, quiet=quiet)
    assert 8 <= pick.hour < 21
    assert pick.hour == 20  # the allowed hour next to 21:00 (pooled neighbour)
    # Europe/Berlin is UTC+1 in December: quiet 20:00-07:00 UTC, so 20:00 UTC is out too and nothing
    # allowed scores: the earliest allowed hour, 07:00 UTC (08:00 Berlin), not 06:30 (still quiet).
    berlin = (time(21), time(8), "Europe/Berlin")
    assert best_send_time(profile, now=MONDAY, within_hours=24, quiet=berlin).hour == 7

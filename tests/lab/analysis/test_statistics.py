"""Confidence intervals over seeds: Student's t, kept inside a figure's range, and paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lab.analysis.statistics import Interval, interval, paired_difference, t_quantile


def test_the_interval_is_students_t_over_the_seeds():
    # mean 0.96, sample std 0.01, t(0.975, 2) = 4.302653: half width 4.302653 * 0.01 / sqrt(3)
    found = interval([0.95, 0.96, 0.97])
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert found.n == 3 and found.mean == pytest.approx(0.96) and found.std == pytest.approx(0.01)
    assert (found.ci_low, found.ci_high) == (pytest.approx(0.96 - half), pytest.approx(0.96 + half))
    assert t_quantile(0.975, 1) == pytest.approx(12.706205) and t_quantile(0.975, 30) == pytest.approx(2.042272)


def test_the_interval_matches_scipy_stats():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10, 40):
        values = rng.normal(0.9, 0.02, size=n)
        found = interval(list(values))
        low, high = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
        assert (found.ci_low, found.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_one_seed_has_no_interval_and_no_seed_is_an_error():
    assert interval([0.9]) == Interval(1, 0.9, None, None, None)
    with pytest.raises(ValueError):
        interval([])


def test_the_paired_difference_uses_only_the_seeds_both_have():
    difference, seeds = paired_difference({0: 0.95, 1: 0.97, 2: 0.96, 5: 0.5}, {0: 0.94, 1: 0.95, 2: 0.95})
    assert seeds == [0, 1, 2]
    expected = interval([0.01, 0.02, 0.01])
    assert (difference.mean, difference.ci_low) == (pytest.approx(expected.mean), pytest.approx(expected.ci_low))
    assert paired_difference({3: 1.0}, {0: 1.0}) == (None, [])


def test_intervals_stay_inside_the_figures_range_near_its_bounds():
    angles = interval([0.1, 0.2, 3.0], bounds=(0.0, 180.0))  # the plain t interval is [-3.1, 5.3]: no angle is negative
    assert angles.mean == pytest.approx(1.1) and 0.0 < angles.ci_low < angles.mean < angles.ci_high <= 180.0
    accuracy = interval([0.97, 0.999, 1.0], bounds=(0.0, 1.0))  # plain t: up to 103.5%
    assert 0.0 <= accuracy.ci_low < accuracy.mean < accuracy.ci_high <= 1.0
    two_seeds = interval([0.05, 0.95], bounds=(0.0, 1.0))  # t(0.975, 1) = 12.7: plain t spans -5.2 to 6.2
    assert 0.0 <= two_seeds.ci_low < 0.5 < two_seeds.ci_high <= 1.0
    assert interval([1.0, 1.0, 1.0], bounds=(0.0, 1.0)) == Interval(3, 1.0, 0.0, 1.0, 1.0)
    one_sided = interval([0.01, 0.02, 2.0], bounds=(0.0, None))
    assert 0.0 < one_sided.ci_low < one_sided.mean < one_sided.ci_high
    with pytest.raises(ValueError, match="outside the figure's range"):
        interval([0.5, 1.2], bounds=(0.0, 1.0))


def test_a_bounded_interval_is_the_t_interval_away_from_the_bounds():
    values = [0.50, 0.51, 0.52]  # half way between 0 and 100%
    bounded, plain = interval(values, bounds=(0.0, 1.0)), interval(values)
    assert bounded.mean == plain.mean and bounded.std == plain.std
    assert (bounded.ci_low, bounded.ci_high) == (
        pytest.approx(plain.ci_low, abs=1e-4),
        pytest.approx(plain.ci_high, abs=1e-4),
    )
    near = interval([0.95, 0.96, 0.97], bounds=(0.0, 1.0))
    assert near.ci_high - near.mean < near.mean - near.ci_low, "narrower on the side of the bound at 100%"


def test_a_paired_difference_keeps_its_sign_inside_the_range_of_a_difference():
    worse, _ = paired_difference({0: 0.90, 1: 0.91, 2: 0.92}, {0: 0.92, 1: 0.94, 2: 0.945}, bounds=(0.0, 1.0))
    assert worse.mean == pytest.approx(-0.025) and -1.0 < worse.ci_low < worse.ci_high < 0.0
    wild, _ = paired_difference({0: 0.1, 1: 0.9}, {0: 0.5, 1: 0.2}, bounds=(0.0, 1.0))  # differences -0.4, +0.7
    assert -1.0 <= wild.ci_low < 0.0 < wild.ci_high <= 1.0, "plain t: -6.8 to +7.1, beyond +-100 points"

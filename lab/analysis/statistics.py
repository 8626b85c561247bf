"""Confidence intervals and paired tests over a handful of values (training seeds, images): Student's t intervals
on the logit scale of a figure's range, paired t-tests, and Holm's correction for a family of tests.

The interval is Student's t on a scale that respects the figure's range. A figure declares its range once
(:data:`SEED_METRICS`: accuracy lies in [0, 1], an angle in [0, 180] degrees); the mean is mapped to the
logit of its place in that range, ``g(m) = log((m - low) / (high - m))``, the interval there is
``g(m) +- t(0.975, n - 1) * g'(m) * std / sqrt(n)`` (the delta method, with the sample standard deviation),
and both ends are mapped back. So an interval always holds the mean, never leaves the range (no negative
angle, no accuracy above 100%), is asymmetric near a bound, and is the plain t interval
``mean +- t * std / sqrt(n)`` when the seeds' spread is small against the distance to the bounds. A figure
with one bound uses the log of its distance to it; one without bounds, the plain t interval. A bootstrap
over seeds was not used: with the 2 to 5 seeds an experiment has, a percentile bootstrap interval cannot
be wider than the seeds' own range and covers the mean far less often than 95%.

One seed has no spread and so no interval (null, with a note saying so). The paired difference subtracts
the baseline's value seed by seed before the same interval, on the difference's own range (``-(high -
low)`` to ``high - low``: it can be negative): seeds fix the subset, the initial weights and the batch
order, so pairing removes what the two variants share.

The tests (:func:`paired_t`) and their correction (:func:`holm`) serve the interpretability verdicts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

Bounds = tuple[float | None, float | None]  # a figure's (lowest, highest) possible value; None: no bound


CONFIDENCE = 0.95
INTERVAL_METHOD = "Student's t on the logit scale of each figure's range, mapped back"  # as the CLI help names it


@dataclasses.dataclass(frozen=True)
class Interval:
    """A figure over ``n`` seeds: its mean, sample standard deviation and confidence interval (the last
    three None for one seed)."""

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high}


def t_quantile(probability: float, df: int) -> float:
    """Student's t quantile with ``df`` degrees of freedom (2-sided 95%: ``t_quantile(0.975, n - 1)``)."""
    from scipy.special import stdtrit  # here: every ``python -m lab`` command imports this module

    return float(stdtrit(df, probability))


def _logistic(z: float) -> float:
    """``1 / (1 + exp(-z))`` without overflow for any ``z``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _bounded_ends(mean: float, half_se: float, bounds: Bounds) -> tuple[float, float]:
    """The ends of ``mean +- half_se`` (``half_se``: t times the standard error) taken on the scale that maps
    ``bounds`` to the whole line (logit for two bounds, log for one) by the delta method, and mapped back.
    ``mean`` lies strictly inside ``bounds`` and ``half_se`` is positive."""
    low, high = bounds
    if low is not None and high is not None:
        width = high - low
        center = math.log((mean - low) / (high - mean))
        half = half_se * width / ((mean - low) * (high - mean))  # g'(m) = (high - low) / ((m - low)(high - m))
        return low + width * _logistic(center - half), low + width * _logistic(center + half)
    if low is not None:
        factor = math.exp(min(half_se / (mean - low), 700.0))  # g(m) = log(m - low), g'(m) = 1 / (m - low)
        return low + (mean - low) / factor, low + (mean - low) * factor
    if high is not None:
        factor = math.exp(min(half_se / (high - mean), 700.0))
        return high - (high - mean) * factor, high - (high - mean) / factor
    return mean - half_se, mean + half_se


def interval(values: Sequence[float], confidence: float = CONFIDENCE, bounds: Bounds = (None, None)) -> Interval:
    """The mean of ``values`` (at least one) with its t confidence interval, kept inside ``bounds`` (the
    lowest and highest value the figure can take; None: unbounded on that side) as the module says."""
    if not values:
        raise ValueError("interval: no values")
    low, high = bounds
    outside = [v for v in values if (low is not None and v < low) or (high is not None and v > high)]
    if outside:
        raise ValueError(f"interval: {outside[0]} lies outside the figure's range [{low}, {high}]")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(1, mean, None, None, None)
    std = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    if std == 0.0:  # every seed the same (all at a bound, say): nothing to spread
        return Interval(n, mean, std, mean, mean)
    ci_low, ci_high = _bounded_ends(mean, t_quantile((1 + confidence) / 2, n - 1) * std / math.sqrt(n), bounds)
    return Interval(n, mean, std, ci_low, ci_high)


def difference_bounds(bounds: Bounds) -> Bounds:
    """The range of a difference of two values of a figure in ``bounds``: ``+-(high - low)`` (unbounded
    unless both bounds are known)."""
    low, high = bounds
    if low is None or high is None:
        return (None, None)
    return (-(high - low), high - low)


def paired_difference(
    values: Mapping[int, float],
    baseline: Mapping[int, float],
    confidence: float = CONFIDENCE,
    bounds: Bounds = (None, None),
) -> tuple[Interval | None, list[int]]:
    """``values - baseline`` seed by seed over the seeds both have, with its interval inside the range of a
    difference of two values in ``bounds`` (the figure's own range); (None, []) when they share no seed."""
    seeds = sorted(set(values) & set(baseline))
    if not seeds:
        return None, []
    differences = [values[seed] - baseline[seed] for seed in seeds]
    return interval(differences, confidence, difference_bounds(bounds)), seeds


Key = TypeVar("Key")


def paired_t(differences: Sequence[float] | np.ndarray) -> tuple[float | None, float | None, int]:
    """``(mean, p, n)``: the mean of the finite ``differences`` and the two-sided p-value of a one-sample
    t-test of mean 0 on them (a paired t-test when they are paired differences). p is None under two
    values; with no spread it is 1 for a mean of exactly 0 and 0 otherwise."""
    from scipy.special import stdtr  # here: every ``python -m lab`` command imports this module

    d = np.asarray(differences, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return None, None, 0
    mean = float(d.mean())
    if n < 2:
        return mean, None, 1
    spread = float(d.std(ddof=1))
    if spread == 0:
        return mean, (1.0 if mean == 0 else 0.0), n
    t = mean / (spread / math.sqrt(n))
    return mean, float(min(1.0, 2 * stdtr(n - 1, -abs(t)))), n


def holm(p_values: Mapping[Key, float | None]) -> dict[Key, float | None]:
    """Holm-Bonferroni adjusted p-values of one family of tests: the i-th smallest of m p-values times
    ``m - i + 1``, made non-decreasing in that order, at most 1. Rejecting where the adjusted p is under
    alpha keeps the chance of any false "difference" in the family under alpha. None (no test) stays None
    and does not count in m."""
    tested = sorted(((p, key) for key, p in p_values.items() if p is not None), key=lambda item: item[0])
    m = len(tested)
    adjusted: dict[Key, float | None] = dict.fromkeys(p_values)
    running = 0.0
    for i, (p, key) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return adjusted

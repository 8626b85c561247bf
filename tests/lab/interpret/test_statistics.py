"""The tests behind a verdict: Holm-Bonferroni on known p-values, and the paired t test as scipy computes it."""

from __future__ import annotations

import numpy as np
import pytest

from lab.interpret import statistics as stats


def test_holm_adjusts_known_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then made non-decreasing: 0.02, 0.03, 0.06, 0.06
    adjusted = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "untested": None})
    assert adjusted["untested"] is None
    assert {k: v for k, v in adjusted.items() if v is not None} == pytest.approx(
        {"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02}
    )
    assert stats.holm({"x": 0.5, "y": 0.6}) == {"x": 1.0, "y": 1.0}  # capped at 1
    assert stats.holm({"alone": 0.02}) == {"alone": 0.02}  # a family of one is not adjusted


def test_paired_t_is_scipys_paired_t_test():
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(5)
    a, b = rng.normal(0.5, 0.1, 40), rng.normal(0.47, 0.1, 40)
    mean, p, n = stats.paired_t(a - b)
    assert n == 40 and mean == pytest.approx(float(np.mean(a - b)))
    assert p == pytest.approx(ttest_rel(a, b).pvalue, rel=1e-9)
    assert stats.paired_t(np.zeros(5))[1] == 1.0 and stats.paired_t(np.full(5, 0.2))[1] == 0.0
    assert stats.paired_t([0.3]) == (0.3, None, 1)

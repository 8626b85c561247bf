"""Verdicts and their sentences: no difference from identical inputs, a real difference with its number and
direction, each verdict adjusted over the metrics, maps worse than a random map never called better, and over
seeds a paired t test of one value per run."""

from __future__ import annotations

import numpy as np
import pytest

from lab.interpret import scoring, verdicts


def _result(name: str, values: np.ndarray) -> scoring.MetricResult:
    return scoring.summarize(name, values, {"random": np.full(len(values), 0.3)})


def test_identical_inputs_give_no_significant_difference():
    values = np.random.default_rng(1).uniform(0, 1, 500)
    comparison = scoring.compare(_result("object_mass", values), _result("object_mass", values.copy()))
    assert not comparison.significant and comparison.better is None
    text = verdicts.sentence(comparison, "AMC", "softmax")
    assert text.startswith("No significant difference in object mass between AMC and softmax on these 500 images")


def test_a_real_difference_reads_as_a_sentence_with_its_number_and_direction():
    rng = np.random.default_rng(2)
    softmax = rng.uniform(0.3, 0.7, 500)
    amc = np.clip(softmax + 0.12 + rng.normal(0, 0.3, 500), 0, 1)
    comparison = scoring.compare(_result("object_mass", amc), _result("object_mass", softmax))
    assert comparison.significant and comparison.better
    text = verdicts.sentence(comparison, "AMC", "softmax")
    assert text.startswith("AMC puts ") and text.endswith(
        "% more of the map on the object than softmax on these 500 images (better; Holm-adjusted p < 0.001)."
    )
    shown = float(text.split()[2])
    assert shown == pytest.approx(comparison.difference * 100, abs=1)
    # lower is better for deletion: the same improvement in the other direction is "better"
    worse = scoring.compare(_result("deletion_auc", amc), _result("deletion_auc", softmax))
    assert worse.better is False and "(worse; Holm-adjusted p" in verdicts.sentence(worse, "AMC", "softmax")


def _differences(t: float, n: int = 200, seed: int = 0) -> np.ndarray:
    """``n`` differences whose one-sample t statistic is exactly ``t``."""
    noise = np.random.default_rng(seed).normal(size=n)
    noise = (noise - noise.mean()) / noise.std(ddof=1)
    return noise + t / np.sqrt(n)


def test_each_verdict_has_a_direction_and_is_adjusted_over_the_metrics():
    random = np.random.default_rng(6).uniform(0.4, 0.6, 200)
    marginal = {  # each alone at p = 0.017 in its own direction
        "insertion_auc": random + _differences(2.4, seed=1),  # higher is better
        "deletion_auc": random + _differences(2.4, seed=2),  # lower is better
        "object_mass": random - _differences(2.4, seed=3),
    }
    alone = {name: scoring.summarize(name, v, {"random": random}) for name, v in marginal.items()}
    assert [r.verdict for r in alone.values()] == ["better", "worse", "worse"]
    assert all(r.p_adjusted == pytest.approx(0.0173, abs=5e-4) for r in alone.values())
    strong = scoring.summarize("road", random - 0.05 + _differences(0.0, seed=4) * 0.01, {"random": random})
    family = scoring.adjust(alone | {"road": strong, "randomization_similarity": None})
    assert family["randomization_similarity"] is None
    assert family["road"].verdict == "worse"  # far below the random map: a finding, stated
    for name in marginal:  # three tests at 0.017 among four: Holm gives each 3 x 0.017 > 0.05
        assert family[name].p_adjusted == pytest.approx(3 * alone[name].p_adjusted)
        assert family[name].verdict == "not distinguishable"
    printed = scoring.to_json(family, names=("road", "object_mass"))
    assert printed["road"]["verdict"] == "worse" and printed["road"]["p_adjusted"] < 0.05
    assert printed["object_mass"]["p"] == pytest.approx(alone["object_mass"].p_adjusted)
    assert "distinguishable" not in printed["road"]


def test_maps_worse_than_a_random_map_are_never_called_better_than_softmax():
    # the filed case: AMC 2 points above softmax on object mass, image by image, both below a random map
    rng = np.random.default_rng(4)
    random = np.clip(rng.normal(0.495, 0.05, 200), 0, 1)
    softmax = random - 0.047 + rng.normal(0, 0.03, 200)
    amc = softmax + 0.020 + rng.normal(0, 0.01, 200)
    amc_result, softmax_result = (scoring.summarize("object_mass", v, {"random": random}) for v in (amc, softmax))
    assert amc_result.verdict == softmax_result.verdict == "worse"
    comparison = scoring.compare(amc_result, softmax_result)
    assert comparison.significant and comparison.better  # ahead of softmax ...
    assert verdicts.outcome(comparison, amc_result) == "higher, but worse than a random map"  # ... but not better
    text = verdicts.sentence(comparison, "AMC", "softmax", amc_result)
    assert "(better" not in text and "AMC's maps are worse than a random map" in text
    # maps that beat the random map are better than softmax when they are ahead of it
    above = scoring.summarize("object_mass", amc + 0.2, {"random": random})
    ahead = scoring.compare(above, softmax_result)
    assert verdicts.outcome(ahead, above) == "better" and "(better; Holm-adjusted p" in verdicts.sentence(
        ahead, "AMC", "softmax", above
    )


RANDOM_MASS = (0.495, 0.494, 0.496)  # each run's random-map object mass


def _seeds(values: tuple[float, ...]) -> dict[int, dict[str, scoring.MetricResult]]:
    """Runs of seeds 0, 1, 2 with these object masses (each run's mean over two images)."""
    return {
        seed: {"object_mass": scoring.summarize("object_mass", np.full(2, v), {"random": np.full(2, r)})}
        for seed, (v, r) in enumerate(zip(values, RANDOM_MASS, strict=True))
    }


def test_over_seeds_each_run_is_one_value_and_the_verdict_is_a_paired_t_test_over_the_seeds():
    from scipy.stats import ttest_rel

    from lab.analysis import statistics

    softmax, amc = _seeds((0.44, 0.452, 0.446)), _seeds((0.462, 0.470, 0.471))
    amc_seeds, softmax_seeds = scoring.over_seeds(amc), scoring.over_seeds(softmax)
    mass = amc_seeds["object_mass"]
    assert amc_seeds["road"] is None
    assert mass.seeds == [0, 1, 2] and list(mass.values.values()) == pytest.approx([0.462, 0.470, 0.471])
    assert mass.stats == statistics.interval(list(mass.values.values()), bounds=(0.0, 1.0))  # t, inside [0, 1]
    assert mass.verdict == "worse" and mass.baseline == pytest.approx(0.495, abs=1e-6)
    expected = ttest_rel([0.462, 0.470, 0.471], RANDOM_MASS).pvalue
    assert mass.p_adjusted == pytest.approx(expected, rel=1e-4)  # one metric: nothing to adjust
    comparisons = scoring.compare_all(amc_seeds, softmax_seeds)
    comparison = comparisons["object_mass"]
    difference, paired = statistics.paired_difference(mass.values, softmax_seeds["object_mass"].values)
    assert (comparison.ci_low, comparison.ci_high, comparison.n) == (difference.ci_low, difference.ci_high, 3)
    assert comparison.significant and comparison.over == "seeds"
    assert verdicts.outcome(comparison, mass) == "higher, but worse than a random map"
    assert "over 3 training seeds" in verdicts.sentence(comparison, "AMC", "softmax", mass)
    # one seed: no interval, no test, so neither a verdict nor an outcome
    alone = scoring.over_seeds({0: amc[0]})["object_mass"]
    assert alone.stats.ci_low is None and alone.verdict is None
    single = scoring.compare_all({"object_mass": alone}, scoring.over_seeds({0: softmax[0]}))["object_mass"]
    assert single.p_adjusted is None and verdicts.outcome(single, alone) == "no significant difference"

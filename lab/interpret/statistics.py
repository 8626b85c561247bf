"""The statistics behind LossLens's interpretability claims: means with confidence intervals, each metric
tested against each baseline map, one loss tested against another. No UI; :mod:`lab.interpret.verdicts` says
what they mean in words.

Two scopes, one method. Over the images of one trained model (:func:`summarize`, :func:`compare`): the
mean with a bootstrap percentile CI, and a paired t-test over the images (maps minus baseline maps, or
model A minus model B, image by image). Over training seeds (:func:`over_seeds`, :func:`compare_seeds`):
each run's mean over the images is one value, the mean over the seeds has a Student's t interval, and the
test is a paired t-test over the seeds. In both scopes the p-values of one comparison (the maps against
the random map, the maps against the Gaussian, A against softmax) are adjusted by Holm-Bonferroni over the
metrics of that comparison (:func:`holm`), and a difference counts at the 5% level of the adjusted p-value.

Every verdict has a direction: ``better``, ``worse`` or ``not distinguishable``, by the metric's direction
in :data:`METRICS`. A loss is called better than the reference only on a metric where its own maps are
better than a random map (:func:`outcome`): maps that a random map beats are no improvement, whatever
the reference scored. :mod:`lab.interpret.scoring` documents each metric's definition and source in one table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from lab.analysis import statistics
from lab.analysis.statistics import holm, paired_t

REPORTED = ("deletion_auc", "insertion_auc", "road", "confidence_drop", "object_mass", "randomization_similarity")
"""The metrics the command line prints under ``metrics.<name>`` and the page shows."""
CI_LEVEL = 0.95
RESAMPLES = 2000
RANDOM = "random"  # the baseline a verdict is against
REFERENCE_LOSS = "softmax"  # what "does this loss make the maps more interpretable?" compares with

BETTER, WORSE, NOT_DISTINGUISHABLE = "better", "worse", "not distinguishable"
VERDICTS = (BETTER, WORSE, NOT_DISTINGUISHABLE)
NO_DIFFERENCE = "no significant difference"

IMAGE_TEST = "paired t-test over the images"
SEED_TEST = "paired t-test over the training seeds"
CORRECTION = "Holm-Bonferroni over the metrics of each comparison"


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A metric's label, its direction and its sentences. A sentence template is filled with ``a`` and
    ``b`` (the two models' names), ``m`` (the difference with its CI half-width) and ``on`` (what the
    difference is over: "on these 200 images", "over 3 training seeds"). ``bounds``: the lowest and
    highest value the metric can take, which an interval over seeds stays inside."""

    name: str
    label: str
    higher_is_better: bool
    percent: bool
    more: str
    less: str
    bounds: tuple[float, float] = (0.0, 1.0)


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "deletion_auc",
            "deletion AUC",
            False,
            False,
            "{a} has a {m} higher deletion AUC than {b} {on}: deleting the pixels its maps rank first lowers the "
            "prediction more slowly",
            "{a} has a {m} lower deletion AUC than {b} {on}: deleting the pixels its maps rank first lowers the "
            "prediction sooner",
        ),
        MetricSpec(
            "insertion_auc",
            "insertion AUC",
            True,
            False,
            "{a} has a {m} higher insertion AUC than {b} {on}: inserting the pixels its maps rank first restores "
            "the prediction sooner",
            "{a} has a {m} lower insertion AUC than {b} {on}: inserting the pixels its maps rank first restores "
            "the prediction more slowly",
        ),
        MetricSpec(
            "road",
            "ROAD",
            True,
            False,
            "{a} scores {m} higher on ROAD than {b} {on}",
            "{a} scores {m} lower on ROAD than {b} {on}",
            (-0.5, 0.5),
        ),
        MetricSpec(
            "road_morf",
            "ROAD most-relevant-first",
            False,
            True,
            "{a} keeps {m} more of the prediction than {b} when the pixels its maps rank highest are imputed, {on}",
            "{a} keeps {m} less of the prediction than {b} when the pixels its maps rank highest are imputed, {on}",
            (-1.0, 1.0),
        ),
        MetricSpec(
            "road_lerf",
            "ROAD least-relevant-first",
            True,
            True,
            "{a} keeps {m} more of the prediction than {b} when the pixels its maps rank lowest are imputed, {on}",
            "{a} keeps {m} less of the prediction than {b} when the pixels its maps rank lowest are imputed, {on}",
            (-1.0, 1.0),
        ),
        MetricSpec(
            "confidence_drop",
            "confidence drop",
            False,
            True,
            "Multiplying the image by {a}'s maps lowers the prediction by {m} more than by {b}'s, {on}",
            "Multiplying the image by {a}'s maps lowers the prediction by {m} less than by {b}'s, {on}",
        ),
        MetricSpec(
            "confidence_increase",
            "confidence increase",
            True,
            True,
            "Multiplying the image by {a}'s maps raises the prediction on {m} more of the images than by {b}'s, {on}",
            "Multiplying the image by {a}'s maps raises the prediction on {m} fewer of the images than by {b}'s, {on}",
        ),
        MetricSpec(
            "object_mass",
            "object mass",
            True,
            True,
            "{a} puts {m} more of the map on the object than {b} {on}",
            "{a} puts {m} less of the map on the object than {b} {on}",
        ),
        MetricSpec(
            "randomization_similarity",
            "randomization similarity",
            False,
            False,
            "{a}'s maps stay {m} more similar (rank correlation) than {b}'s when the top layers are re-initialized, "
            "{on}: they depend less on what the model learned",
            "{a}'s maps stay {m} less similar (rank correlation) than {b}'s when the top layers are re-initialized, "
            "{on}: they depend more on what the model learned",
            (-1.0, 1.0),
        ),
    )
}


# ---------------------------------------------------------------- tests and their correction


def direction(name: str, difference: float | None, p_adjusted: float | None, level: float = CI_LEVEL) -> str | None:
    """``better``, ``worse`` or ``not distinguishable``: what a difference (first minus second) of metric
    ``name`` says by the metric's direction, at ``1 - level`` of the adjusted p; None when untested."""
    if difference is None or p_adjusted is None:
        return None
    if p_adjusted >= 1 - level:
        return NOT_DISTINGUISHABLE
    return BETTER if (difference > 0) == METRICS[name].higher_is_better else WORSE


@dataclasses.dataclass(frozen=True)
class Test:
    """The maps against one baseline on one metric: the mean difference (maps minus baseline), the raw and
    Holm-adjusted p-values, how many images or seeds, and the verdict (None when untested)."""

    difference: float | None
    p: float | None
    p_adjusted: float | None
    n: int
    verdict: str | None

    def to_json(self, baseline: float | None) -> dict[str, float | str | None]:
        return {"baseline": baseline, "verdict": self.verdict, "p": self.p, "p_adjusted": self.p_adjusted}


def _test(name: str, differences: Sequence[float] | np.ndarray, level: float) -> Test:
    """A test alone (its family of one: adjusted p = p), to be adjusted with its family by :func:`adjust`."""
    mean, p, n = paired_t(differences)
    return Test(mean, p, p, n, direction(name, mean, p, level))


# ---------------------------------------------------------------- means over images


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean over ``n`` images with its bootstrap CI (None where fewer than 2 images have a value)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def mean_ci(values: np.ndarray, *, level: float = CI_LEVEL, resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Mean of the finite ``values`` and its bootstrap percentile CI at ``level`` (seeded resampling)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Interval(None, None, None, 0)
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, None, None, 1)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), len(v))


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, level: float = CI_LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Mean of ``a[i] - b[i]`` over the images where both are defined, with its bootstrap CI."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same images: got {a.shape} and {b.shape}")
    return mean_ci(a - b, level=level, resamples=resamples, seed=seed)


class _Judged:
    """What a metric's result over images and over seeds share: its tests against the baselines."""

    name: str
    value: float | None
    baselines: dict[str, float | None]
    tests: dict[str, Test]

    @property
    def baseline(self) -> float | None:
        """The metric for the random maps."""
        return self.baselines.get(RANDOM)

    @property
    def verdict(self) -> str | None:
        """The maps against the random map: ``better``, ``worse``, ``not distinguishable`` (None: untested)."""
        test = self.tests.get(RANDOM)
        return test.verdict if test is not None else None

    @property
    def p_adjusted(self) -> float | None:
        """The Holm-adjusted p-value of the test against the random map."""
        test = self.tests.get(RANDOM)
        return test.p_adjusted if test is not None else None


@dataclasses.dataclass(frozen=True, eq=False)
class MetricResult(_Judged):
    """One metric of one model's maps on N images.

    ``value``, ``ci_low``, ``ci_high``: the mean over the images with a value and its bootstrap CI (None
    without one); ``baselines``: the same metric's mean for each baseline map (``random``, ``gaussian``,
    ``blurred`` where computed); ``tests``: the maps against each baseline, image by image (a paired
    t-test; Holm-adjusted over the metrics once :func:`adjust` has seen them all). ``values`` and
    ``baseline_values``: the N per-image values (NaN where undefined) of the maps and of the random maps,
    for :func:`compare`; ``n_images``: how many are defined.
    """

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    baselines: dict[str, float | None]
    tests: dict[str, Test]
    values: np.ndarray
    baseline_values: np.ndarray
    n_images: int

    def to_json(self) -> dict[str, object]:
        """What the command line prints under ``metrics.<name>``."""
        return _json(self, self.ci_low, self.ci_high)


def _json(result: MetricResult | SeedResult, low: float | None, high: float | None) -> dict[str, object]:
    random = result.tests.get(RANDOM)
    return {
        "value": result.value,
        "ci_low": low,
        "ci_high": high,
        "baseline": result.baseline,
        "verdict": result.verdict,
        "p": random.p if random else None,
        "p_adjusted": result.p_adjusted,
        "against": {key: test.to_json(result.baselines.get(key)) for key, test in result.tests.items()},
    }


def summarize(
    name: str,
    values: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    *,
    level: float = CI_LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> MetricResult:
    """A :class:`MetricResult` from per-image values of the maps and of each baseline on the same images
    (``baselines["random"]`` is required: the verdict is against it). Its tests are each a family of one
    until :func:`adjust` corrects them over the metrics."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r} (choose from: {', '.join(METRICS)})")
    boot = {"level": level, "resamples": resamples, "seed": seed}
    values = np.asarray(values, dtype=np.float32)
    per_baseline = {key: np.asarray(v, dtype=np.float32) for key, v in baselines.items()}
    own = mean_ci(values, **boot)
    return MetricResult(
        name=name,
        value=own.mean,
        ci_low=own.low,
        ci_high=own.high,
        baselines={key: mean_ci(v, **boot).mean for key, v in per_baseline.items()},
        tests={key: _test(name, values.astype(np.float64) - v, level) for key, v in per_baseline.items()},
        values=values,
        baseline_values=per_baseline[RANDOM],
        n_images=own.n,
    )


Judged = TypeVar("Judged", "MetricResult", "SeedResult")


def adjust(results: Mapping[str, Judged | None], level: float = CI_LEVEL) -> dict[str, Judged | None]:
    """``results`` (one model's metrics, or one variant's over seeds) with each baseline's p-values
    Holm-adjusted over the metrics tested against that baseline, and the verdicts redone from them."""
    present = {name: r for name, r in results.items() if r is not None}
    tests = {name: dict(r.tests) for name, r in present.items()}
    for key in {key for r in present.values() for key in r.tests}:
        family = {name: r.tests[key].p for name, r in present.items() if key in r.tests}
        for name, p_adjusted in holm(family).items():
            test = tests[name][key]
            verdict = direction(name, test.difference, p_adjusted, level)
            tests[name][key] = dataclasses.replace(test, p_adjusted=p_adjusted, verdict=verdict)
    return {name: (dataclasses.replace(r, tests=tests[name]) if r is not None else None) for name, r in results.items()}


def to_json(results: Mapping[str, MetricResult | None], names: Sequence[str] = REPORTED) -> dict[str, object]:
    """``{name: {"value", "ci_low", "ci_high", "baseline", "verdict", "p", "p_adjusted", "against"} or None}``
    for ``names``; ``against`` holds each baseline's mean and the verdict of the maps against it."""
    return {name: (r.to_json() if (r := results.get(name)) is not None else None) for name in names}


# ---------------------------------------------------------------- over training seeds


@dataclasses.dataclass(frozen=True, eq=False)
class SeedResult(_Judged):
    """One metric of one variant over its training seeds. ``values[seed]``: each run's mean over the
    images; ``stats``: their mean with a Student's t interval kept inside the metric's range
    (:func:`lab.analysis.statistics.interval`);
    ``baselines``: each baseline's mean over the seeds; ``tests``: the runs' values against their own
    baselines' values, seed by seed (a paired t-test over the seeds, Holm-adjusted over the metrics)."""

    name: str
    values: dict[int, float]
    stats: statistics.Interval
    baselines: dict[str, float | None]
    tests: dict[str, Test]

    @property
    def value(self) -> float | None:
        return self.stats.mean

    @property
    def seeds(self) -> list[int]:
        return sorted(self.values)

    def to_json(self) -> dict[str, object]:
        return {"seeds": self.seeds, **_json(self, self.stats.ci_low, self.stats.ci_high)}


def over_seeds(
    runs: Mapping[int, Mapping[str, MetricResult | None]], names: Sequence[str] = REPORTED, level: float = CI_LEVEL
) -> dict[str, SeedResult | None]:
    """One variant's metrics over its seeds from ``runs[seed][metric]`` (each run's results over the same
    images): for each metric with a value in some run, a :class:`SeedResult` whose tests are adjusted over
    the metrics (None where no run has a value)."""
    results: dict[str, SeedResult | None] = {}
    for name in names:
        found = {seed: per_metric.get(name) for seed, per_metric in sorted(runs.items())}
        scored = {seed: r for seed, r in found.items() if r is not None and r.value is not None}
        if not scored:
            results[name] = None
            continue
        keys = set.intersection(*(set(r.baselines) for r in scored.values()))
        tests, baselines = {}, {}
        for key in sorted(keys):
            paired = [r.value - r.baselines[key] for r in scored.values() if r.baselines[key] is not None]
            tests[key] = _test(name, paired, level)
            means = [r.baselines[key] for r in scored.values() if r.baselines[key] is not None]
            baselines[key] = float(np.mean(means)) if means else None
        low, high = METRICS[name].bounds
        # float32 rounding can put a mean a hair outside its range, which the bounded interval refuses
        values = {seed: min(max(float(r.value), low), high) for seed, r in scored.items()}
        stats = statistics.interval(list(values.values()), level, bounds=(low, high))
        results[name] = SeedResult(name, values, stats, baselines, tests)
    return adjust(results, level)


# ---------------------------------------------------------------- comparing two models


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Model A minus model B on one metric, paired image by image (``over="images"``) or seed by seed
    (``over="seeds"``): the mean difference with its CI, the paired t-test's raw and Holm-adjusted p, and
    ``n`` images or seeds."""

    name: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    p: float | None
    p_adjusted: float | None
    over: str = "images"
    level: float = CI_LEVEL

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < 1 - self.level

    @property
    def better(self) -> bool | None:
        """Whether A is better than B by the metric's direction (None when not significant)."""
        if not self.significant or self.difference is None:
            return None
        return (self.difference > 0) == METRICS[self.name].higher_is_better

    @property
    def n_images(self) -> int:
        return self.n

    def where(self) -> str:
        """What the difference is over, for a sentence: "on these 200 images", "over 3 training seeds"."""
        if self.over == "seeds":
            return f"over {self.n} training seed{'s' if self.n != 1 else ''}"
        return f"on these {self.n} images"

    def to_json(self) -> dict[str, float | None]:
        return {
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p": self.p,
            "p_adjusted": self.p_adjusted,
        }


def compare(
    a: MetricResult, b: MetricResult, *, level: float = CI_LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> Comparison:
    """The paired difference ``a - b`` of one metric for two models on the same images in the same order
    (for example AMC against softmax), with its bootstrap CI and a paired t-test over the images (a family
    of one: :func:`compare_all` adjusts over the metrics)."""
    if a.name != b.name:
        raise ValueError(f"cannot compare {a.name} with {b.name}")
    diff = paired_difference(a.values, b.values, level=level, resamples=resamples, seed=seed)
    _, p, _ = paired_t(np.asarray(a.values, dtype=np.float64) - np.asarray(b.values, dtype=np.float64))
    return Comparison(a.name, diff.mean, diff.low, diff.high, diff.n, p, p, "images", level)


def compare_seeds(a: SeedResult, b: SeedResult, level: float = CI_LEVEL) -> Comparison:
    """``a - b`` seed by seed over the seeds both have: the mean with its t interval and a paired t-test
    over the seeds (a family of one: :func:`compare_all` adjusts over the metrics)."""
    if a.name != b.name:
        raise ValueError(f"cannot compare {a.name} with {b.name}")
    interval, seeds = statistics.paired_difference(a.values, b.values, level)
    if interval is None:
        return Comparison(a.name, None, None, None, 0, None, None, "seeds", level)
    _, p, _ = paired_t([a.values[s] - b.values[s] for s in seeds])
    return Comparison(a.name, interval.mean, interval.ci_low, interval.ci_high, len(seeds), p, p, "seeds", level)


def compare_all(
    a: Mapping[str, MetricResult | SeedResult | None],
    b: Mapping[str, MetricResult | SeedResult | None],
    names: Sequence[str] = REPORTED,
    level: float = CI_LEVEL,
) -> dict[str, Comparison]:
    """A against B on every metric of ``names`` that both have (over images for :class:`MetricResult`,
    over seeds for :class:`SeedResult`), the p-values Holm-adjusted over those metrics."""
    found = {}
    for name in names:
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            continue
        found[name] = compare_seeds(x, y, level) if isinstance(x, SeedResult) else compare(x, y, level=level)
    adjusted = holm({name: c.p for name, c in found.items()})
    return {name: dataclasses.replace(c, p_adjusted=adjusted[name]) for name, c in found.items()}

"""The statistics behind LossLens's interpretability claims: means with bootstrap CIs over images, each
metric against its random-map baseline, paired differences between two models, plain sentences. No UI.

Every metric's direction (is higher better?) lives in :data:`METRICS`; :mod:`lab.interpret` documents
each metric's definition and source in one table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

REPORTED = ("deletion_auc", "insertion_auc", "road", "confidence_drop", "object_mass", "randomization_similarity")
"""The metrics the command line prints under ``metrics.<name>``."""
CI_LEVEL = 0.95
RESAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """A metric's label, its direction and its sentences. A sentence template is filled with ``a`` and
    ``b`` (the two models' names), ``m`` (the difference with its CI half-width) and ``n`` (images)."""

    name: str
    label: str
    higher_is_better: bool
    percent: bool
    more: str
    less: str


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "deletion_auc",
            "deletion AUC",
            False,
            False,
            "{a} has a {m} higher deletion AUC than {b} on these {n} images: deleting the pixels its maps rank "
            "first lowers the prediction more slowly (worse)",
            "{a} has a {m} lower deletion AUC than {b} on these {n} images: deleting the pixels its maps rank "
            "first lowers the prediction sooner (better)",
        ),
        MetricSpec(
            "insertion_auc",
            "insertion AUC",
            True,
            False,
            "{a} has a {m} higher insertion AUC than {b} on these {n} images: inserting the pixels its maps "
            "rank first restores the prediction sooner (better)",
            "{a} has a {m} lower insertion AUC than {b} on these {n} images: inserting the pixels its maps "
            "rank first restores the prediction more slowly (worse)",
        ),
        MetricSpec(
            "road",
            "ROAD",
            True,
            False,
            "{a} scores {m} higher on ROAD than {b} on these {n} images: its maps are more faithful to the model",
            "{a} scores {m} lower on ROAD than {b} on these {n} images: its maps are less faithful to the model",
        ),
        MetricSpec(
            "road_morf",
            "ROAD most-relevant-first",
            False,
            True,
            "{a} keeps {m} more of the prediction than {b} when the pixels its maps rank highest are imputed, "
            "on these {n} images (worse)",
            "{a} keeps {m} less of the prediction than {b} when the pixels its maps rank highest are imputed, "
            "on these {n} images (better)",
        ),
        MetricSpec(
            "road_lerf",
            "ROAD least-relevant-first",
            True,
            True,
            "{a} keeps {m} more of the prediction than {b} when the pixels its maps rank lowest are imputed, "
            "on these {n} images (better)",
            "{a} keeps {m} less of the prediction than {b} when the pixels its maps rank lowest are imputed, "
            "on these {n} images (worse)",
        ),
        MetricSpec(
            "confidence_drop",
            "confidence drop",
            False,
            True,
            "Multiplying the image by {a}'s maps lowers the prediction by {m} more than by {b}'s on these "
            "{n} images (worse)",
            "Multiplying the image by {a}'s maps lowers the prediction by {m} less than by {b}'s on these "
            "{n} images (better)",
        ),
        MetricSpec(
            "confidence_increase",
            "confidence increase",
            True,
            True,
            "Multiplying the image by {a}'s maps raises the prediction on {m} more of these {n} images than "
            "by {b}'s (better)",
            "Multiplying the image by {a}'s maps raises the prediction on {m} fewer of these {n} images than "
            "by {b}'s (worse)",
        ),
        MetricSpec(
            "object_mass",
            "object mass",
            True,
            True,
            "{a} puts {m} more of the map on the object than {b} on these {n} images",
            "{a} puts {m} less of the map on the object than {b} on these {n} images",
        ),
        MetricSpec(
            "randomization_similarity",
            "randomization similarity",
            False,
            False,
            "{a}'s maps stay {m} more similar (rank correlation) than {b}'s when the top layers are "
            "re-initialized, on these {n} images: they depend less on what the model learned (worse)",
            "{a}'s maps stay {m} less similar (rank correlation) than {b}'s when the top layers are "
            "re-initialized, on these {n} images: they depend more on what the model learned (better)",
        ),
    )
}


# ---------------------------------------------------------------- statistics


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


@dataclasses.dataclass(frozen=True, eq=False)
class MetricResult:
    """One metric of one model's maps on N images.

    ``value``, ``ci_low``, ``ci_high``: the mean over the images with a value and its CI (None without
    one); ``baseline``: the same metric for random maps, ``baselines``: for each baseline (``random``,
    ``gaussian``, ``blurred`` where computed); ``distinguishable``: the CI of the paired difference to the
    random maps excludes 0. ``values`` and ``baseline_values``: the N per-image values (NaN where
    undefined) of the maps and of the random maps, for :func:`compare`; ``n_images``: how many are defined.
    """

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    baseline: float | None
    distinguishable: bool
    baselines: dict[str, float | None]
    values: np.ndarray
    baseline_values: np.ndarray
    n_images: int

    def to_json(self) -> dict[str, float | bool | None]:
        """What the command line prints under ``metrics.<name>``."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "baseline": self.baseline,
            "distinguishable": self.distinguishable,
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
    (``baselines["random"]`` is required: it decides ``distinguishable``)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r} (choose from: {', '.join(METRICS)})")
    boot = {"level": level, "resamples": resamples, "seed": seed}
    values = np.asarray(values, dtype=np.float32)
    random_values = np.asarray(baselines["random"], dtype=np.float32)
    own = mean_ci(values, **boot)
    means = {key: mean_ci(v, **boot).mean for key, v in baselines.items()}
    return MetricResult(
        name=name,
        value=own.mean,
        ci_low=own.low,
        ci_high=own.high,
        baseline=means["random"],
        distinguishable=paired_difference(values, random_values, **boot).excludes_zero,
        baselines=means,
        values=values,
        baseline_values=random_values,
        n_images=own.n,
    )


def to_json(results: Mapping[str, MetricResult | None], names: Sequence[str] = REPORTED) -> dict[str, object]:
    """``{name: {"value", "ci_low", "ci_high", "baseline", "distinguishable"} or None}`` for ``names``."""
    return {name: (r.to_json() if (r := results.get(name)) is not None else None) for name in names}


# ---------------------------------------------------------------- comparing two models


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Model A minus model B on one metric, image by image: the mean difference and its CI.
    ``better``: whether A is better than B by the metric's direction (None when not significant)."""

    name: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    n_images: int
    significant: bool
    better: bool | None
    level: float = CI_LEVEL


def compare(
    a: MetricResult, b: MetricResult, *, level: float = CI_LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> Comparison:
    """The paired difference ``a - b`` of one metric for two models on the same images in the same order
    (for example AMC against softmax), with its bootstrap CI."""
    if a.name != b.name:
        raise ValueError(f"cannot compare {a.name} with {b.name}")
    diff = paired_difference(a.values, b.values, level=level, resamples=resamples, seed=seed)
    better = None
    if diff.excludes_zero:
        better = (diff.mean > 0) == METRICS[a.name].higher_is_better
    return Comparison(a.name, diff.mean, diff.low, diff.high, diff.n, diff.excludes_zero, better, level)


def _magnitude(value: float, half_width: float, percent: bool) -> str:
    """``12 ± 3%`` / ``0.031 ± 0.008``: the half width shown to one significant digit, the value to match."""
    scale = 100.0 if percent else 1.0
    value, half_width = abs(value) * scale, half_width * scale
    decimals = max(0, -math.floor(math.log10(half_width))) if half_width > 0 else (0 if percent else 3)
    unit = "%" if percent else ""
    return f"{value:.{decimals}f} ± {half_width:.{decimals}f}{unit}"


def sentence(comparison: Comparison, a: str, b: str) -> str:
    """A plain sentence with the number, e.g. "AMC puts 12 ± 3% more of the map on the object than softmax
    on these 500 images"; "No significant difference ..." when the CI includes 0. ± is half the CI's width."""
    spec = METRICS[comparison.name]
    n = comparison.n_images
    if comparison.difference is None or comparison.ci_low is None or comparison.ci_high is None:
        return f"Too few images with a {spec.label} to compare {a} and {b} ({n})."
    half = (comparison.ci_high - comparison.ci_low) / 2
    if not comparison.significant:
        shown = _magnitude(comparison.difference, half, spec.percent)
        sign = "-" if comparison.difference < 0 else "+"
        return (
            f"No significant difference in {spec.label} between {a} and {b} on these {n} images "
            f"({a} minus {b}: {sign}{shown}; the {comparison.level:.0%} CI includes 0)."
        )
    template = spec.more if comparison.difference > 0 else spec.less
    return template.format(a=a, b=b, m=_magnitude(comparison.difference, half, spec.percent), n=n) + "."

"""Each loss's lesson, checked on an experiment instead of taken on trust.

A loss's lesson (the Learn page) promises what it does to the features, and ``expected`` (from its table
in ``losses/about.toml``) says which figures of the experiment summary that moves against softmax: a
narrower within-class angle for AMC, a smaller class spread for LMD. :func:`check_lessons` compares each
variant with the experiment's softmax variant seed by seed (the paired difference over the seeds both
finished, a paired t-test, Holm-adjusted over the variant's promises) and says whether this experiment
shows it, shows the opposite, or cannot tell. So an example or a new experiment where a loss does not do
what its lesson says is reported with its numbers, never presented as if it did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import losses
from lab.analysis.seed_stats import SEED_METRICS, VariantSummary
from lab.analysis.statistics import Interval, holm, paired_difference, paired_t

SHOWN = "shown"
OPPOSITE = "opposite"
NOT_DISTINGUISHABLE = "not distinguishable"
ONE_SEED = "too few seeds"
LEVEL = 0.05  # of the Holm-adjusted p-value


@dataclasses.dataclass(frozen=True)
class LessonCheck:
    """One promise of one variant's lesson on one experiment: the figure, the expected direction, the
    variant's and softmax's values over the paired seeds, their paired difference with its interval, the
    test's raw and Holm-adjusted p, and the verdict (:data:`SHOWN`, :data:`OPPOSITE`,
    :data:`NOT_DISTINGUISHABLE`, or :data:`ONE_SEED` under two paired seeds)."""

    variant: str
    baseline: str
    expected: losses.Expected
    variant_mean: float
    baseline_mean: float
    difference: Interval | None
    seeds: list[int]
    p: float | None
    p_adjusted: float | None
    verdict: str

    def sentence(self) -> str:
        """The check in words, e.g. "AMC-Loss: mean within-class angle 7.5 against softmax's 7.6 (3 seeds):
        not distinguishable from softmax (lesson: each class forms a narrower wedge; Holm-adjusted p = 0.8)"."""
        metric = SEED_METRICS[self.expected.figure]
        n = len(self.seeds)
        numbers = (
            f"{metric.title} {metric.format(self.variant_mean)} against {self.baseline}'s "
            f"{metric.format(self.baseline_mean)} ({n} seed{'s' if n != 1 else ''})"
        )
        promised = f"expected {self.expected.direction}: {self.expected.because}"
        if self.verdict == ONE_SEED:
            return f"{numbers}: {promised}; one paired seed cannot tell (train more seeds)"
        p = f"Holm-adjusted p = {self.p_adjusted:.2g}"
        if self.verdict == SHOWN:
            return f"{numbers}: {self.expected.direction}, as the lesson says ({promised}; {p})"
        if self.verdict == OPPOSITE:
            opposite = "higher" if self.expected.direction == "lower" else "lower"
            return f"{numbers}: {opposite}, the opposite of the lesson on this experiment ({promised}; {p})"
        return f"{numbers}: not distinguishable from {self.baseline} on this experiment ({promised}; {p})"


def _softmax_baseline(summaries: Sequence[VariantSummary]) -> VariantSummary | None:
    """The experiment's reference: its first softmax variant with finished seeds."""
    return next((s for s in summaries if s.loss == "softmax" and s.n > 0), None)


def check_lessons(summaries: Sequence[VariantSummary]) -> list[LessonCheck]:
    """Every promise of every variant's lesson (its loss's ``expected``) checked against the experiment's
    softmax variant; empty without a softmax variant. Variants without finished seeds are left out."""
    baseline = _softmax_baseline(summaries)
    if baseline is None:
        return []
    checks = []
    for summary in summaries:
        if summary is baseline or summary.n == 0:
            continue
        promises = [e for e in losses.get(summary.loss).expected if e.figure in SEED_METRICS]
        found: dict[int, tuple[losses.Expected, Interval | None, list[int], float | None]] = {}
        for index, expected in enumerate(promises):
            mine, theirs = summary.values[expected.figure], baseline.values[expected.figure]
            difference, seeds = paired_difference(mine, theirs, bounds=SEED_METRICS[expected.figure].bounds)
            _, p, _ = paired_t([mine[seed] - theirs[seed] for seed in seeds])
            found[index] = (expected, difference, seeds, p)
        adjusted = holm({index: p for index, (_, _, _, p) in found.items()})
        for index, (expected, difference, seeds, p) in found.items():
            mine, theirs = summary.values[expected.figure], baseline.values[expected.figure]
            checks.append(
                LessonCheck(
                    variant=summary.variant,
                    baseline=baseline.variant,
                    expected=expected,
                    variant_mean=sum(mine[s] for s in seeds) / len(seeds) if seeds else float("nan"),
                    baseline_mean=sum(theirs[s] for s in seeds) / len(seeds) if seeds else float("nan"),
                    difference=difference,
                    seeds=seeds,
                    p=p,
                    p_adjusted=adjusted[index],
                    verdict=_verdict(expected, difference, adjusted[index]),
                )
            )
    return checks


def _verdict(expected: losses.Expected, difference: Interval | None, p_adjusted: float | None) -> str:
    if difference is None or p_adjusted is None or difference.n < 2:
        return ONE_SEED
    if p_adjusted >= LEVEL:
        return NOT_DISTINGUISHABLE
    return SHOWN if (difference.mean < 0) == (expected.direction == "lower") else OPPOSITE

"""An experiment's variants over their seeds: mean, spread and a 95% confidence interval per figure, and
the paired difference to a baseline variant over the seeds both finished.

The summaries (:func:`summarize`) are pure functions of the numbers; :func:`run_result` and
:func:`summarize_experiment` read them from a run store. A run counts only when it finished and its
features read back; every other run (stopped, diverged, failed, interrupted, still running, a repeated
seed) is named in ``left_out`` and never averaged in.

The intervals and the paired difference are :mod:`lab.analysis.statistics`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lab.analysis.geometry import class_angles, class_spread, share_beyond_margin
from lab.analysis.statistics import Bounds, Interval, interval, paired_difference
from lab.analysis.wording import percent
from lab.runs.contents import RunStoreError
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.experiment import variant_label


@dataclasses.dataclass(frozen=True)
class SeedMetric:
    """A figure summarized over seeds: how pages name it, its range (its intervals stay inside it) and
    whether it is a fraction drawn as a percentage."""

    title: str
    low: float | None = None
    high: float | None = None
    percent: bool = False
    unit: str = ""
    column: str = ""  # a table's short header
    about: str = ""  # what it measures, for a column's help

    @property
    def bounds(self) -> Bounds:
        return (self.low, self.high)

    @property
    def axis_title(self) -> str:
        """The title with its unit, for an axis or a column: "mean within-class angle (°)"."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def number(self, value: float, signed: bool = False) -> str:
        """``value`` as pages write it, without its unit: a share in percent by the app's one rounding rule
        (:func:`lab.analysis.wording.percent`), a figure with a unit (an angle) to one decimal, else three
        significant digits; ``signed`` writes a plus sign too (a difference)."""
        sign = "+" if signed else ""
        if self.percent:
            return f"{percent(value):{sign}.1f}"
        return f"{value:{sign}.1f}" if self.unit else f"{value:{sign}.3g}"

    def format(self, value: float) -> str:
        """``value`` as pages write it: a percentage, or the number with its unit."""
        return self.number(value) + ("%" if self.percent else self.unit)


# The figures summarized for every run: accuracy, the two angle figures of lab.analysis.geometry (degrees), the share
# beyond a margin of MARGIN_DEGREES and the class spread (the figures the losses' lessons promise to move).
MARGIN_DEGREES = 10.0
SEED_METRICS = {
    "test_acc": SeedMetric("test accuracy", 0.0, 1.0, percent=True, column="accuracy", about="Test accuracy"),
    "mean_within_class_angle": SeedMetric(
        "mean within-class angle",
        0.0,
        180.0,
        unit="°",
        column="within (°)",
        about="Mean angle of a feature to its class's mean direction",
    ),
    "min_between_class_angle": SeedMetric(
        "min between-class angle",
        0.0,
        180.0,
        unit="°",
        column="between (°)",
        about="Smallest angle between two classes' mean directions",
    ),
    "share_beyond_margin": SeedMetric(
        f"share beyond a {MARGIN_DEGREES:g}° margin",
        0.0,
        1.0,
        percent=True,
        column=f"beyond {MARGIN_DEGREES:g}°",
        about=f"Share of test samples at least {MARGIN_DEGREES:g}° closer in angle to their own class direction than "
        "to the nearest other one",
    ),
    "class_spread": SeedMetric(
        "class spread",
        0.0,
        None,
        column="spread",
        about="Mean distance of a feature to its class's mean feature "
        "over the mean distance from a class's mean to the nearest other class's mean (lower: tighter classes "
        "farther apart; lengths count, not only angles)",
    ),
}
METRICS = tuple(SEED_METRICS)
METRIC_TITLES = {name: metric.axis_title for name, metric in SEED_METRICS.items()}
PERCENT_METRICS = tuple(name for name, metric in SEED_METRICS.items() if metric.percent)


@dataclasses.dataclass(frozen=True)
class SeedFigure:
    """One figure of one variant over its seeds; ``difference`` is its paired difference to the baseline
    variant over ``paired_seeds`` (None for the baseline itself, or when they share no seed)."""

    variant: str
    stats: Interval
    difference: Interval | None
    paired_seeds: list[int]


def over_seeds(
    values: Mapping[str, Mapping[int, float]], baseline: str | None, bounds: Bounds = (None, None)
) -> list[SeedFigure]:
    """``values[variant][seed]`` holds one figure per run (a test accuracy, or a run's mean deletion AUC over
    its images): each variant's interval over its seeds and, but for ``baseline``, its paired difference to
    ``baseline`` seed by seed (none at all when ``baseline`` is None), both inside the range that ``bounds``
    gives the figure (see :func:`interval`). Variants without a value are left out."""
    if baseline is not None and baseline not in values:
        raise ValueError(f"baseline: no variant is labelled {baseline!r} (variants: {', '.join(values)})")
    figures = []
    for variant, by_seed in values.items():
        if not by_seed:
            continue
        paired_to_baseline = baseline is not None and variant != baseline
        difference, paired = (
            paired_difference(by_seed, values[baseline], bounds=bounds) if paired_to_baseline else (None, [])
        )
        figures.append(SeedFigure(variant, interval(list(by_seed.values()), bounds=bounds), difference, paired))
    return figures


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One run of an experiment as the summary sees it; ``figures`` is None for a run not averaged in,
    and ``message`` then says why."""

    run_id: str
    variant: str
    loss: str
    loss_params: dict[str, Any]
    seed: int
    state: str
    message: str
    figures: dict[str, float] | None


@dataclasses.dataclass(frozen=True)
class VariantSummary:
    """One variant over its seeds. ``values[metric][seed]`` are the finished runs' figures (the Compare
    page draws each as a dot), ``stats[metric]`` their interval (absent with no finished run),
    ``difference[metric]`` the paired difference to ``baseline`` (None for the baseline itself)."""

    variant: str
    loss: str
    loss_params: dict[str, Any]
    values: dict[str, dict[int, float]]
    stats: dict[str, Interval]
    baseline: str | None
    difference: dict[str, Interval]
    paired_seeds: list[int]
    left_out: list[RunResult]

    @property
    def seeds(self) -> list[int]:
        return sorted(self.values[METRICS[0]]) if self.values else []

    @property
    def n(self) -> int:
        return len(self.seeds)

    def notes(self) -> list[str]:
        """What a reader must know before trusting the intervals."""
        notes = []
        if self.n == 0:
            notes.append("no finished run: nothing to average")
        elif self.n == 1:
            notes.append("one finished seed: no confidence interval (train more seeds, e.g. --seeds 0,1,2)")
        if self.baseline is not None and len(self.paired_seeds) < 2:
            shared = "one seed" if self.paired_seeds else "no seed"
            notes.append(f"shares {shared} with {self.baseline}: no confidence interval for the difference")
        if self.left_out:
            runs = ", ".join(f"{r.run_id} (seed {r.seed}, {r.state})" for r in self.left_out)
            notes.append(f"not averaged in: {runs}")
        return notes

    def to_json(self) -> dict[str, Any]:
        """The line ``python -m lab summary`` prints."""
        line: dict[str, Any] = {
            "variant": self.variant,
            "loss": self.loss,
            "n": self.n,
            "seeds": self.seeds,
            "runs": self.n + len(self.left_out),
        }
        for metric in METRICS:
            line[metric] = self.stats[metric].to_json() if metric in self.stats else None
        line["vs_baseline"] = None
        if self.baseline is not None:
            line["vs_baseline"] = {
                "variant": self.baseline,
                "seeds": self.paired_seeds,
                **{
                    metric: self.difference[metric].to_json() if metric in self.difference else None
                    for metric in METRICS
                },
            }
        line["left_out"] = [
            {"run_id": r.run_id, "seed": r.seed, "status": r.state, "message": r.message} for r in self.left_out
        ]
        line["notes"] = self.notes()
        return line


def summarize(results: Sequence[RunResult], baseline: str | None = None) -> list[VariantSummary]:
    """Group ``results`` by variant (in the order the variants first appear) and summarize each; the
    differences are to ``baseline`` (default: the first variant)."""
    order: dict[str, list[RunResult]] = {}
    for result in results:
        order.setdefault(result.variant, []).append(result)
    if not order:
        return []
    baseline = baseline if baseline is not None else next(iter(order))
    if baseline not in order:
        raise ValueError(f"baseline: no variant is labelled {baseline!r} (variants: {', '.join(order)})")
    counted: dict[str, dict[str, dict[int, float]]] = {}
    left_out: dict[str, list[RunResult]] = {}
    for variant, runs in order.items():
        values: dict[str, dict[int, float]] = {metric: {} for metric in METRICS}
        skipped = []
        for run in runs:
            if run.figures is None:
                skipped.append(run)
            elif run.seed in values[METRICS[0]]:
                skipped.append(dataclasses.replace(run, message=f"seed {run.seed} is already counted"))
            else:
                for metric in METRICS:
                    values[metric][run.seed] = run.figures[metric]
        counted[variant], left_out[variant] = values, skipped
    by_metric = {
        metric: {
            figure.variant: figure
            for figure in over_seeds({v: counted[v][metric] for v in order}, baseline, SEED_METRICS[metric].bounds)
        }
        for metric in METRICS
    }
    summaries = []
    for variant, runs in order.items():
        values = counted[variant]
        figures = {metric: by_metric[metric][variant] for metric in METRICS if variant in by_metric[metric]}
        stats = {metric: figure.stats for metric, figure in figures.items()}
        difference = {metric: f.difference for metric, f in figures.items() if f.difference is not None}
        paired = figures[METRICS[0]].paired_seeds if METRICS[0] in figures else []
        summaries.append(
            VariantSummary(
                variant=variant,
                loss=runs[0].loss,
                loss_params=runs[0].loss_params,
                values=values,
                stats=stats,
                baseline=None if variant == baseline else baseline,
                difference=difference,
                paired_seeds=paired,
                left_out=left_out[variant],
            )
        )
    return summaries


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Variants of one loss that differ in one hyperparameter only (L-Softmax m = 1..4): a figure can be
    plotted against ``setting``. ``variants`` are in the order of the setting's values."""

    loss: str
    setting: str
    variants: list[VariantSummary]

    def values(self) -> list[Any]:
        return [summary.loss_params[self.setting] for summary in self.variants]


def sweeps(summaries: Sequence[VariantSummary]) -> list[Sweep]:
    """Each loss whose variants (two or more) differ in exactly one hyperparameter, in the order the
    losses first appear; a loss whose variants differ in several has no single axis and is left out."""
    by_loss: dict[str, list[VariantSummary]] = {}
    for summary in summaries:
        by_loss.setdefault(summary.loss, []).append(summary)
    found = []
    for loss, group in by_loss.items():
        if len(group) < 2:
            continue
        differing = [name for name in group[0].loss_params if len({repr(s.loss_params.get(name)) for s in group}) > 1]
        if len(differing) != 1:
            continue
        setting = differing[0]
        ordered = sorted(group, key=lambda s: _sort_key(s.loss_params[setting]))
        found.append(Sweep(loss, setting, ordered))
    return found


def _sort_key(value: Any) -> tuple[int, Any]:
    # numbers by value, anything else (a choice such as "truth") by its text, after the numbers
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def run_result(store: RunStore, record: RunRecord) -> RunResult:
    """A stored run's figures: accuracy and angles from its stored test features, when it finished."""
    config = record.config
    if config is None:
        return RunResult(record.run_id, record.run_id, "", {}, -1, "unreadable", record.error or "", None)
    result = RunResult(
        record.run_id,
        variant_label(config),
        config.loss,
        dict(config.loss_params),
        config.seed,
        record.state,
        record.message,
        None,
    )
    if record.state != "finished":
        return result
    try:
        features = store.load_features(record.run_id)
    except RunStoreError as err:
        return dataclasses.replace(result, state="unreadable", message=str(err))
    labels = features.test_labels.numpy()
    logits = features.test_logits.numpy()
    test_features = features.test_features.numpy()
    directions = None if features.class_directions is None else features.class_directions.numpy()
    n_classes = logits.shape[1]
    figures = {
        "test_acc": float((logits.argmax(1) == labels).mean()),
        **class_angles(test_features, labels, n_classes),
        "share_beyond_margin": share_beyond_margin(test_features, labels, n_classes, directions, MARGIN_DEGREES),
        "class_spread": class_spread(test_features, labels),
    }
    return dataclasses.replace(result, figures=figures)


def summarize_experiment(
    store: RunStore, experiment: str, baseline: str | None = None, owner: str | None = None
) -> list[VariantSummary]:
    """The summary of ``experiment`` in ``store`` (with ``owner``: as that app session sees it). Variants
    come in the order their first run started, which is the order they were given."""
    groups = store.experiments(owner=owner)
    if experiment not in groups:
        known = ", ".join(list(groups)[:5]) or "none"
        raise RunStoreError(f"experiment {experiment!r} not found in {store.root} (newest experiments: {known})")
    return summarize([run_result(store, record) for record in groups[experiment]], baseline)

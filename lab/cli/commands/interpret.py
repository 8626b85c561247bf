"""``python -m lab interpret``: how interpretable each run's class activation maps are, as JSON lines.

One line per finished run of the experiment: ``run_id``, ``loss``, ``variant``, ``seed``, ``method``,
``layer``, ``images``, ``over: "images"``, ``test`` (how the verdicts were reached) and
``metrics.<name> = {"value", "ci_low", "ci_high", "baseline", "verdict", "p", "p_adjusted", "against"}`` for
every metric in :data:`lab.interpret.scoring.REPORTED` (null where a metric is undefined, such as object mass on
data whose foreground is unknown). ``verdict`` is the maps against the random map: ``better``, ``worse``
or ``not distinguishable``, from a paired t-test over the images with the p-value Holm-adjusted over the
metrics (``p_adjusted``); ``against`` gives each baseline's mean and the verdict against it.

When the experiment has several training seeds, one more line per variant follows with ``over: "seeds"``:
the same fields over the seeds (each run's mean is one value, a paired t-test over the seeds, Holm over
the metrics), and under ``vs_reference`` each metric's difference to the softmax variant seed by seed,
with its adjusted p and ``outcome`` (``better`` only where the variant's maps are better than a random
map). With several seeds these lines are the verdict; the per-run lines are one seed each.

It scores the test images each run stores, so the dataset is not needed. A progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Iterator

import models
from lab import datasets
from lab.cli.common import ProgressBar, print_json
from lab.interpret import statistics as stats
from lab.interpret import verdicts
from lab.interpret.methods import CAM_METHOD_CLASSES
from lab.interpret.statistics import MetricResult, to_json
from lab.runs.record import RunRecord, require_config
from lab.runs.restore import load_trained
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import variant_label

HELP = "score each run's Grad-CAM maps against random-map baselines (95%% CIs) and print a JSON line per run"
DEFAULT_IMAGES = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, metavar="NAME", help="the experiment whose runs to score")
    parser.add_argument("--runs-dir", default="runs", help="the runs folder (default: runs)")
    parser.add_argument(
        "--method",
        default="GradCAM",
        choices=list(CAM_METHOD_CLASSES),
        help="the CAM method (default: GradCAM)",
    )
    parser.add_argument(
        "--images",
        type=int,
        default=DEFAULT_IMAGES,
        metavar="N",
        help=f"score the first N of the test images each run stores (default: {DEFAULT_IMAGES}; at least 2)",
    )
    parser.add_argument(
        "--layer",
        default="last",
        choices=list(models.CAM_LAYERS),
        help="the last convolution, or the previous one with a finer map (default: last)",
    )


@dataclasses.dataclass(frozen=True)
class ScoredRun:
    """One run's metrics: its record and config, how many stored images were scored, and the results."""

    record: RunRecord
    config: RunConfig
    images: int
    metrics: dict[str, MetricResult | None]


def finished_runs(store: RunStore, experiment: str) -> list[RunRecord]:
    """The finished runs of ``experiment``; a ValueError naming the experiments there when it has none."""
    records = [r for r in store.list() if r.experiment == experiment and r.state == "finished"]
    if not records:
        known = sorted({r.experiment for r in store.list()})
        raise ValueError(
            f"no finished runs of experiment {experiment!r} in {store.root}"
            + (f" (experiments there: {', '.join(known)})" if known else " (it holds no runs)")
        )
    return records


def score_runs(
    store: RunStore,
    records: list[RunRecord],
    images: int,
    method: str = "GradCAM",
    layer: str = "last",
    on_error: Callable[[RunRecord, str], None] | None = None,
) -> Iterator[ScoredRun]:
    """Score each run's maps on its first ``images`` stored test images, one run at a time (the caller may
    time each), with a progress bar on stderr. With ``on_error``, a run that cannot be scored (files that
    disagree with its config, NaN weights) is handed to it with the reason and the next run is scored;
    without, its error is raised."""
    from lab.interpret import gradcam  # pytorch-grad-cam and its imports: only when maps are scored

    bar = ProgressBar()
    for i, record in enumerate(records):

        def progress(fraction: float, text: str, i: int = i, name: str = record.run_id) -> None:
            bar.draw(
                (i + fraction) / len(records), f"[{i + 1}/{len(records)}] {name}", text[:40], milestone=fraction >= 1
            )

        try:
            config = require_config(record)
            stored = store.load_features(record.run_id).snapshot_images
            if stored is None:
                raise ValueError(
                    f"run {record.run_id} stores no test images (trained before runs kept them): retrain it"
                )
            model, head = load_trained(store, record)
            metrics = gradcam.interpretability(
                model,
                head,
                stored[:images].numpy(),
                datasets.info(config.dataset).train_statistics,
                method=method,
                layer=layer,
                foreground_known=datasets.info(config.dataset).foreground_known,
                progress=progress,
            )
        except (ValueError, RuntimeError) as err:  # RunStoreError and ConfigError are ValueErrors
            if on_error is None:
                raise
            on_error(record, str(err))
            continue
        yield ScoredRun(record, config, int(min(images, len(stored))), metrics)
    if bar.interactive:
        bar.stream.write("\n")


def image_test(metrics: dict[str, MetricResult | None]) -> str:
    """How a run line's verdicts were reached, in words."""
    family = sum(result is not None for result in metrics.values())
    return f"{stats.IMAGE_TEST}; p Holm-adjusted over the {family} metrics against each baseline; 5% level"


def seed_lines(scored: list[ScoredRun]) -> list[dict[str, object]]:
    """One line per variant over its seeds when the runs hold several seeds (none otherwise): each metric
    against the baselines over the seeds, and against the softmax variant seed by seed."""
    if len({run.config.seed for run in scored}) < 2:
        return []
    by_variant: dict[str, dict[int, dict[str, MetricResult | None]]] = {}
    losses: dict[str, str] = {}
    for run in scored:
        variant = variant_label(run.config)
        by_variant.setdefault(variant, {})[run.config.seed] = run.metrics
        losses.setdefault(variant, run.config.loss)
    summaries = {variant: stats.over_seeds(runs) for variant, runs in by_variant.items()}
    reference = next((v for v, loss in losses.items() if loss == stats.REFERENCE_LOSS), None)
    lines = []
    for variant, results in summaries.items():
        versus = None
        if reference is not None and variant != reference:
            comparisons = stats.compare_all(results, summaries[reference])
            versus = {
                "variant": reference,
                "metrics": {
                    name: comparison.to_json() | {"outcome": verdicts.outcome(comparison, results[name])}
                    for name, comparison in comparisons.items()
                },
            }
        family = sum(result is not None for result in results.values())
        lines.append(
            {
                "variant": variant,
                "loss": losses[variant],
                "seeds": sorted(by_variant[variant]),
                "over": "seeds",
                "test": f"{stats.SEED_TEST}; p Holm-adjusted over the {family} metrics of each comparison; 5% level",
                "metrics": {name: (r.to_json() if (r := results.get(name)) else None) for name in stats.REPORTED},
                "vs_reference": versus,
            }
        )
    return lines


def run(args: argparse.Namespace) -> int:
    if args.images < 2:
        raise ValueError(f"--images must be at least 2 (a confidence interval needs two images), got {args.images}")
    store = RunStore(args.runs_dir)
    scored_runs = []
    failed = []

    def report(record: RunRecord, problem: str) -> None:
        failed.append(record.run_id)
        where = "" if problem.startswith(f"run {record.run_id}") else f"run {record.run_id}: "
        sys.stderr.write(f"\nerror: {where}{problem}\n")

    records = finished_runs(store, args.experiment)
    for scored in score_runs(store, records, args.images, args.method, args.layer, on_error=report):
        scored_runs.append(scored)
        print_json(
            {
                "run_id": scored.record.run_id,
                "loss": scored.config.loss,
                "variant": variant_label(scored.config),
                "seed": scored.config.seed,
                "method": args.method,
                "layer": args.layer,
                "images": scored.images,
                "over": "images",
                "test": image_test(scored.metrics),
                "metrics": to_json(scored.metrics),
            }
        )
    for line in seed_lines(scored_runs):
        print_json({**line, "method": args.method, "layer": args.layer, "images": scored_runs[0].images})
    return 1 if failed else 0

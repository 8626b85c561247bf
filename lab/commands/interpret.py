"""``python -m lab interpret``: how interpretable each run's class activation maps are, as JSON lines.

One line per finished run of the experiment: ``run_id``, ``loss``, ``variant``, ``seed``, ``method``,
``layer``, ``images`` and ``metrics.<name> = {"value", "ci_low", "ci_high", "baseline", "distinguishable"}``
for every metric in :data:`lab.interpret.REPORTED` (null where a metric is undefined, such as object mass
on data whose foreground is unknown). It scores the test images each run stores, so the dataset is not
needed. A progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator

import models
from lab.cam_methods import CAM_METHOD_CLASSES
from lab.cli import print_json
from lab.config import RunConfig
from lab.experiment import variant_label
from lab.interpret_stats import MetricResult, to_json
from lab.restore import load_trained
from lab.runstore import RunRecord, RunStore, require_config

HELP = "score each run's Grad-CAM maps against random-map baselines (95%% CIs) and print a JSON line per run"
DEFAULT_IMAGES = 200
BAR_WIDTH = 30


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


class ProgressBar:
    """A one-line progress bar on stderr for run ``index`` of ``total`` (also the benchmark's)."""

    def __init__(self, index: int, total: int, name: str) -> None:
        self.index, self.total, self.name = index, total, name

    def __call__(self, fraction: float, text: str) -> None:
        done = (self.index + min(max(fraction, 0.0), 1.0)) / self.total
        filled = round(done * BAR_WIDTH)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:4.0%} {self.name}: {text[:40]:<40}")
        sys.stderr.flush()


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
    store: RunStore, records: list[RunRecord], images: int, method: str = "GradCAM", layer: str = "last"
) -> Iterator[ScoredRun]:
    """Score each run's maps on its first ``images`` stored test images, one run at a time (the caller may
    time each), with a progress bar on stderr."""
    from lab import gradcam  # pytorch-grad-cam and its imports: only when maps are scored

    for i, record in enumerate(records):
        config = require_config(record)
        stored = store.load_features(record.run_id).snapshot_images
        if stored is None:
            raise ValueError(f"run {record.run_id} stores no test images (trained before runs kept them): retrain it")
        model, head = load_trained(store, record)
        metrics = gradcam.interpretability(
            model,
            head,
            stored[:images].numpy(),
            gradcam.train_statistics(config.dataset),
            method=method,
            layer=layer,
            foreground_known=config.dataset in gradcam.FOREGROUND_KNOWN,
            progress=ProgressBar(i, len(records), record.run_id),
        )
        yield ScoredRun(record, config, int(min(images, len(stored))), metrics)
    sys.stderr.write("\n")


def run(args: argparse.Namespace) -> int:
    if args.images < 2:
        raise ValueError(f"--images must be at least 2 (a confidence interval needs two images), got {args.images}")
    store = RunStore(args.runs_dir)
    for scored in score_runs(store, finished_runs(store, args.experiment), args.images, args.method, args.layer):
        print_json(
            {
                "run_id": scored.record.run_id,
                "loss": scored.config.loss,
                "variant": variant_label(scored.config),
                "seed": scored.config.seed,
                "method": args.method,
                "layer": args.layer,
                "images": scored.images,
                "metrics": to_json(scored.metrics),
            }
        )
    return 0

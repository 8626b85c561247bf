"""``python -m lab summary EXPERIMENT``: one JSON line per variant, its figures over its seeds with 95%
confidence intervals that stay inside each figure's range and the paired difference to the first variant
(:mod:`lab.analysis.seed_stats`)."""

from __future__ import annotations

import argparse

from lab.analysis.seed_stats import summarize_experiment
from lab.analysis.statistics import INTERVAL_METHOD
from lab.cli.common import print_json
from lab.runs.store import RunStore

HELP = (
    "print each variant of an experiment over its seeds: means, 95% confidence intervals "
    f"({INTERVAL_METHOD}), paired differences"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="the experiment's name (the 'experiment' field of train's JSON lines)")
    parser.add_argument("--runs-dir", default="runs", help="the runs folder (default: runs)")
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="VARIANT",
        help="the variant the others are compared with, by its label (default: the first variant)",
    )


def run(args: argparse.Namespace) -> int:
    for summary in summarize_experiment(RunStore(args.runs_dir), args.experiment, args.baseline):
        print_json({"experiment": args.experiment, **summary.to_json()})
    return 0

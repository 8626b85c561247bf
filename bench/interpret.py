"""Interpretability metrics: how long scoring an experiment's Grad-CAM maps takes, and the Compare page's
first visit, on the shipped Fashion-MNIST example.

    python -m bench.interpret           # 5 runs x 200 images of example-fashion-3d; the Compare page in AppTest
    python -m bench.interpret --quick   # 2 runs x 20 images of example-digits-2d (CI)
    python -m bench.interpret --threads 1 --skip-compare   # the metrics on one torch thread

* ``metrics/<loss>``: ``lab.interpret.gradcam.interpretability`` for one run (what ``python -m lab interpret`` and
  the Grad-CAM page's "Score the maps" compute): GradCAM maps of the predicted class at the last
  convolution on the first N stored test images, deletion and insertion AUC, ROAD, confidence change and
  object mass for the maps and their random, Gaussian and blurred baselines, the randomization check,
  bootstrap CIs. The model is loaded outside the clock. A progress bar goes to stderr, as the CLI's does.
* ``metrics/total``: the sum over the runs. Target: under 30 s for 5 runs x 200 images with torch on
  two threads (the two-core machines the target is set for). On a machine whose cores other work keeps
  busy, two threads can be several times slower than one (each operation waits for both threads):
  compare with ``--threads 1`` and read the load average in the header.
* ``compare/first_visit``: the Compare page's script run in Streamlit's ``AppTest`` as the first page a new
  session opens, on a fresh runs folder seeded with the examples and every Streamlit cache cleared
  (imports already paid by this process). ``compare/after_feature_space`` is the same page opened after
  the Feature space page (the app's first page) has loaded the runs. Target: under 3 s. Full mode only.

The example runs are copied to a temporary folder first, so the shipped files are only read.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import Report, parser, resolve
from lab.cli.commands.interpret import finished_runs, score_runs
from lab.runs.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "example-runs"
APP = str(ROOT / "app.py")
FULL = ("example-fashion-3d", 200, None)  # experiment, images, runs (None: all)
QUICK = ("example-digits-2d", 20, 2)
THREADS = 2  # the target's two cores
METRICS_TARGET_SECONDS = 30.0
COMPARE_TARGET_SECONDS = 3.0


def copy_examples(experiment: str, into: Path) -> RunStore:
    """A runs folder holding copies of ``experiment``'s shipped runs."""
    for run_dir in sorted(EXAMPLES.glob(f"{experiment}-*")):
        shutil.copytree(run_dir, into / run_dir.name)
    return RunStore(into)


def metrics_seconds(store: RunStore, experiment: str, images: int, runs: int | None, report: Report) -> float:
    """Score every run's maps as ``python -m lab interpret`` does; one figure per run (loading the model
    included) and the total."""
    records = finished_runs(store, experiment)[:runs]
    total = 0.0
    started = time.perf_counter()
    for scored in score_runs(store, records, images):
        seconds = time.perf_counter() - started
        total += seconds
        sys.stderr.write("\n")  # the progress bar's line ends before the figure's
        report.figure(f"metrics/{scored.config.loss}", seconds, "s", note=f"{scored.images} images")
        started = time.perf_counter()
    met = total < METRICS_TARGET_SECONDS
    report.figure(
        "metrics/total",
        total,
        "s",
        target=f"< {METRICS_TARGET_SECONDS:.0f} s for 5 runs x 200 images" if len(records) == 5 else "",
        met=met if len(records) == 5 and images == FULL[1] and torch.get_num_threads() == THREADS else None,
        note=f"{len(records)} runs x {images} images, torch threads: {torch.get_num_threads()}",
    )
    return total


def compare_first_visit(experiment: str, report: Report) -> None:
    """The Compare page's first script run on a fresh server, as the first page and after Feature space."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    previous = os.environ.get("LOSSLENS_RUNS_DIR")
    try:
        for name, first in (("first_visit", "pages/compare.py"), ("after_feature_space", None)):
            with tempfile.TemporaryDirectory(prefix="losslens-bench-") as root:
                os.environ["LOSSLENS_RUNS_DIR"] = str(Path(root) / "runs")
                st.cache_resource.clear()
                st.cache_data.clear()
                app = AppTest.from_file(APP, default_timeout=600)
                app.query_params["exp"] = experiment
                if first is None:
                    app.run()  # the app's first page, Feature space, loads the runs
                    app.switch_page("pages/compare.py")
                else:
                    app.switch_page(first)
                started = time.perf_counter()
                app.run()
                seconds = time.perf_counter() - started
                if app.exception:
                    raise RuntimeError(f"the Compare page failed: {[e.value for e in app.exception]}")
                report.figure(
                    f"compare/{name}",
                    seconds,
                    "s",
                    target=f"< {COMPARE_TARGET_SECONDS:.0f} s",
                    met=seconds < COMPARE_TARGET_SECONDS,
                    note=f"AppTest script run, {experiment}, caches cleared",
                )
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
        if previous is None:
            os.environ.pop("LOSSLENS_RUNS_DIR", None)
        else:
            os.environ["LOSSLENS_RUNS_DIR"] = previous


def main(argv: list[str] | None = None) -> Report:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--threads", type=int, default=None, help=f"torch threads (default {THREADS}; 1 with --quick)")
    parse.add_argument("--skip-compare", action="store_true", help="time the metrics only")
    args = parse.parse_args(argv)
    # quick mode only keeps the code running; one thread keeps it to seconds on a shared machine too
    args.threads = args.threads or (1 if args.quick else THREADS)
    experiment, images, runs = QUICK if args.quick else FULL
    device = resolve("cpu")  # the metrics run where the app scores maps: the CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    report = Report(
        "interpret",
        args,
        device,
        f"{experiment}, GradCAM at the last convolution, {images} stored images per run"
        + (f", {runs} runs" if runs else ", every run")
        + f", torch on {args.threads} thread{'s' if args.threads > 1 else ''}"
        + ("" if args.quick or args.skip_compare else "; the Compare page in AppTest"),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="losslens-bench-") as root:
            metrics_seconds(copy_examples(experiment, Path(root)), experiment, images, runs, report)
        if not (args.quick or args.skip_compare):  # AppTest over five runs: tens of seconds, not CI's few
            compare_first_visit(experiment, report)
    finally:
        torch.set_num_threads(threads)
    report.write()
    return report


if __name__ == "__main__":
    main()

"""``python -m lab report EXPERIMENT --out DIR``: the experiment's report, a self-contained ``report.html``
with its figures (SVG, PDF, 300-dpi PNG) and tables (CSV, LaTeX) as files beside it
(:mod:`lab.reports.html`). Prints one JSON line naming what it wrote."""

from __future__ import annotations

import argparse
import sys

from lab.cli.common import print_json
from lab.interpret.methods import CAM_METHOD_CLASSES

HELP = "write an experiment's report: HTML with its figures (SVG, PDF, PNG), tables (CSV, LaTeX) and methods"
DEFAULT_IMAGES = 100  # as lab.reports.html.DEFAULT_IMAGES, which this module does not import at parse time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", metavar="EXPERIMENT", help="the experiment (python -m lab list names them)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write report.html and its files to")
    parser.add_argument("--runs-dir", default="runs", help="the runs folder (default: runs)")
    parser.add_argument(
        "--images",
        type=int,
        default=DEFAULT_IMAGES,
        metavar="N",
        help=f"score the Grad-CAM maps of the first N stored test images of each run (default: {DEFAULT_IMAGES}; "
        "0: no Grad-CAM metrics, at least 2 otherwise)",
    )
    parser.add_argument(
        "--method", default="GradCAM", choices=list(CAM_METHOD_CLASSES), help="the CAM method (default: GradCAM)"
    )


def run(args: argparse.Namespace) -> int:
    from lab.reports.html import build_report
    from lab.reports.paper import ExportError
    from lab.runs.store import RunStore

    if args.images == 1 or args.images < 0:
        raise ValueError(f"--images must be 0 or at least 2 (an interval needs two images), got {args.images}")

    def progress(text: str) -> None:
        sys.stderr.write(f"{text}\n")

    try:
        report = build_report(
            RunStore(args.runs_dir), args.experiment, images=args.images, method=args.method, progress=progress
        )
    except ExportError as err:
        raise ValueError(str(err)) from None
    written = report.write(args.out)
    print_json(
        {
            "experiment": args.experiment,
            "report": str(written[0]),
            "figures": sorted(str(p) for p in written if p.parent.name == "figures"),
            "tables": sorted(str(p) for p in written if p.parent.name == "tables"),
        }
    )
    return 0

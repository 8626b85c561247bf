"""``python -m lab list``: every run in a runs folder as a JSON line."""

from __future__ import annotations

import argparse

from lab.cli.common import print_json
from lab.runs.store import RunStore

HELP = "print every run as a JSON line"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", default="runs", help="the runs folder to list (default: runs)")


def run(args: argparse.Namespace) -> int:
    for record in RunStore(args.runs_dir).list():
        print_json(record.summary())
    return 0

"""``python -m lab delete EXPERIMENT... --yes``: delete experiments whoever started them (the server's
operator; in the app only the browser that started an experiment may). Runs still training refuse it: a
run nothing will end is first ended with ``python -m lab end``. One JSON line per experiment."""

from __future__ import annotations

import argparse

from lab.cli.common import UsageError, print_json
from lab.runs import ending
from lab.runs.contents import RunStoreError
from lab.runs.store import RunStore

HELP = "delete experiments from the runs folder, whoever started them (ended runs only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiments", nargs="+", metavar="EXPERIMENT", help="experiments as `list` names them (or a lone run's id)"
    )
    parser.add_argument("--runs-dir", default="runs", help="the runs folder that holds them (default: runs)")
    parser.add_argument("--yes", action="store_true", help="delete without asking: their files cannot be restored")


def run(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir)
    groups = store.experiments()
    missing = [name for name in args.experiments if name not in groups]
    if missing:
        raise RunStoreError(f"no experiment {missing[0]!r} in {store.root} (python -m lab list names them)")
    if not args.yes:
        count = sum(len(groups[name]) for name in args.experiments)
        raise UsageError(f"this deletes {count} runs for good; add --yes to delete them")
    for name in args.experiments:
        print_json({"experiment": name, "deleted": ending.delete_all(store, name)})
    return 0

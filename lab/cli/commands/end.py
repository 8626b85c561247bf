"""``python -m lab end RUN_OR_EXPERIMENT...``: mark ended the runs nothing else will end (see
:mod:`lab.runs.ending`): a run another machine left training, a run whose status.json is missing or unreadable.
One JSON line per run ended."""

from __future__ import annotations

import argparse
import getpass
import socket

from lab.cli.common import print_json
from lab.runs import ending
from lab.runs.contents import RunStoreError
from lab.runs.store import RunStore

HELP = "mark ended the runs another machine left training or whose status is missing, so they can be deleted"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="+", metavar="RUN_OR_EXPERIMENT", help="run ids, or experiments (their unended runs)"
    )
    parser.add_argument("--runs-dir", default="runs", help="the runs folder that holds them (default: runs)")


def run_ids(store: RunStore, name: str) -> list[str]:
    """The runs ``name`` means: the run of that id, else the runs of that experiment that need ending."""
    if name in store.run_ids():
        return [name]
    records = store.experiments().get(name)
    if not records:
        raise RunStoreError(f"no run or experiment {name!r} in {store.root} (python -m lab list names them)")
    chosen = [record.run_id for record in records if ending.why_unending(record) is not None]
    if not chosen:
        raise RunStoreError(f"every run of {name} has ended or is training here; nothing to end")
    return chosen


def run(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir)
    chosen = [run_id for name in args.names for run_id in run_ids(store, name)]  # all named before any is ended
    who = f"the operator ({getpass.getuser()} on {socket.gethostname()}, python -m lab end)"
    for run_id in dict.fromkeys(chosen):
        record = ending.end_run(store, run_id, who)
        print_json({"run_id": run_id, "experiment": ending.experiment_of(record), "status": record.state,
                    "owner_known": record.owner is not None, "message": record.message})  # fmt: skip
    return 0

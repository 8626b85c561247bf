"""``python -m lab export RUN_ID --zip OUT.zip`` or ``--projector OUT.zip``: the Compare page's downloads
from the command line (:mod:`lab.reports.export` builds both), each written atomically, with a JSON line naming
the file written."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import BinaryIO

from lab.cli.common import UsageError, print_json
from lab.datasets import load_dataset
from lab.reports import export
from lab.runs.io import atomic_output
from lab.runs.record import require_config
from lab.runs.store import RunStore

HELP = "write a run as a zip (its files and a README) or as a TensorFlow Embedding Projector bundle"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run's folder name, as `list` prints it")
    parser.add_argument("--runs-dir", default="runs", help="the runs folder that holds the run (default: runs)")
    bundle = parser.add_mutually_exclusive_group(required=True)
    bundle.add_argument("--zip", metavar="OUT.zip", help="the run folder as a zip that unzips into a runs folder")
    bundle.add_argument(
        "--projector", metavar="OUT.zip", help="features, metadata and sprites for projector.tensorflow.org"
    )


def run(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir)
    out = Path(args.zip or args.projector)
    if out.is_dir():
        raise UsageError(f"{out} is a folder: name the zip file to write, e.g. {out / (args.run_id + '.zip')}")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} is not a folder: create it first, or write the zip somewhere else")
    if args.zip:
        store.load(args.run_id)  # an unknown run is refused before a file is made

        def write(handle: BinaryIO) -> None:
            export.write_run_zip(store, args.run_id, handle)
    else:
        config = require_config(store.load(args.run_id))
        dataset = load_dataset(config.dataset, config.data_root)

        def write(handle: BinaryIO) -> None:
            export.write_projector_bundle(store, args.run_id, dataset, handle)

    try:
        with atomic_output(out) as handle:  # streamed: a run's files are never all in memory at once
            write(handle)
            size = handle.tell()
    except OSError as err:  # a full disk names the file written, not "a file or folder"
        raise OSError(err.errno, err.strerror or str(err), str(out)) from None
    kind = "zip" if args.zip else "projector"
    print_json({"run_id": args.run_id, "kind": kind, "path": str(out), "bytes": size})
    return 0

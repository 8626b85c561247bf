"""``python -m lab preset NAME``: train one of the papers' experiments (:mod:`lab.settings.presets`), printing a
JSON line per run as ``train`` does; ``--list`` prints each preset as a JSON line instead."""

from __future__ import annotations

import argparse
import sys

from lab.cli.commands.train import add_destination_arguments, add_setting_flags, train_and_print
from lab.cli.common import UsageError, print_json
from lab.settings import presets
from lab.settings.experiment import parse_seeds

HELP = "train one of the papers' experiments (--list shows them)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help=f"the preset: {', '.join(presets.names())}")
    parser.add_argument("--list", action="store_true", help="print every preset as a JSON line and train nothing")
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="train on this one of the preset's datasets (default: the first with a copy here, MNIST first)",
    )
    parser.add_argument("--seeds", default=None, metavar="0,1,2", help="the training seeds (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="epochs (default: the preset's)")
    parser.add_argument(
        "--train-limit", type=int, default=None, metavar="N", help="training images (default: the preset's)"
    )
    add_setting_flags(parser, names=("data_root", "device"))
    add_destination_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for preset in presets.PRESETS:
            print_json(preset.to_json(args.data_root))
        return 0
    if not args.name:
        raise UsageError(
            "name a preset, e.g. python -m lab preset lsoftmax-fig2 (python -m lab preset --list shows them)"
        )
    preset = presets.get(args.name)
    dataset, note = preset.choose_dataset(args.data_root, args.dataset)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    configs = preset.configs(
        args.data_root, args.device, dataset=dataset, seeds=seeds, epochs=args.epochs, train_limit=args.train_limit
    )
    changed = seeds is not None or args.epochs is not None or args.train_limit is not None
    took = "the preset as declared took " + preset.duration() if changed else preset.duration()
    sys.stderr.write(f"{preset.title}: {len(configs)} runs on {dataset}, {took}\n{preset.sentence()}\n")
    if note:
        sys.stderr.write(f"note: {note}\n")
    code = train_and_print(configs, args)
    sys.stderr.write(f"summary: python -m lab summary {configs[0].experiment} --runs-dir {args.runs_dir}\n")
    return code

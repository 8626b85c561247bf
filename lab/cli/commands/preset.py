"""``python -m lab preset NAME``: train one of the papers' experiments (:mod:`lab.settings.presets`), printing a
JSON line per run as ``train`` does; ``--list`` prints each preset as a JSON line instead."""

from __future__ import annotations

import argparse
import sys

from lab.cli.commands.train import add_destination_arguments, add_setting_flags, train_and_print
from lab.cli.common import UsageError, print_json
from lab.settings import presets

HELP = "train one of the papers' experiments (--list shows them)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help=f"the preset: {', '.join(presets.names())}")
    parser.add_argument("--list", action="store_true", help="print every preset as a JSON line and train nothing")
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
    _, note = preset.choose_dataset(args.data_root)
    configs = preset.configs(args.data_root, args.device)
    sys.stderr.write(f"{preset.title}: {preset.n_runs} runs, {preset.duration()}\n{preset.sentence()}\n")
    if note:
        sys.stderr.write(f"note: {note}\n")
    code = train_and_print(configs, args)
    sys.stderr.write(f"summary: python -m lab summary {configs[0].experiment} --runs-dir {args.runs_dir}\n")
    return code

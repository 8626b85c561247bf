"""``python -m lab``: LossLens without the app.

    python -m lab train --dataset digits --losses softmax,amc --feat-dim 2 --epochs 5
    python -m lab list
    python -m lab export RUN_ID --zip run.zip

Each subcommand is a module in ``lab/cli/commands`` registered in :data:`COMMANDS`. Bad arguments and
expected failures (a bad setting, a missing dataset, an unreadable run, a runs folder that is a file,
read-only or full, an unreadable data folder) exit with status 2 and one ``error:`` line naming what to
change, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from lab.cli.common import Parser, UsageError
from lab.datasets.tensors import DatasetError
from lab.runs.contents import RunStoreError
from lab.runs.io import describe_os_error
from lab.settings.config import RunConfig
from losses import plugins

# name -> module under lab/cli/commands, in the order --help lists them
COMMANDS = {
    "train": "train",
    "list": "listing",
    "export": "export",
    "summary": "summary",
    "preset": "preset",
    "interpret": "interpret",
    "check-loss": "check_loss",
    "report": "report",
    "end": "end",
    "delete": "delete",
}


def command(name: str) -> Any:
    return importlib.import_module(f"lab.cli.commands.{COMMANDS[name]}")


def _loss_module_parser() -> argparse.ArgumentParser:
    """The ``--loss-module`` flag every subcommand takes (a run's loss may come from one)."""
    parser = Parser(add_help=False)
    parser.add_argument(
        "--loss-module",
        action="append",
        default=[],
        metavar="PATH_OR_MODULE",
        help=(
            "load your own losses from this .py file, package folder or installed module before anything else "
            f"(repeatable; ${plugins.ENV} and installed '{plugins.ENTRY_POINTS}' entry points are loaded too). "
            "Loading a module runs its code: name only modules you trust"
        ),
    )
    return parser


def load_loss_modules(argv: Sequence[str]) -> list[str]:
    """Load the loss modules ``argv``'s ``--loss-module`` flags, :data:`plugins.ENV` and the installed entry
    points name, before the parser lists the losses; a flag's module that cannot be loaded is a
    :class:`UsageError`, the others' problems are returned as warnings (a broken module in the environment
    must not stop ``list`` or ``export``)."""
    known, _ = _loss_module_parser().parse_known_args(list(argv))
    _, problems = plugins.load_all(known.loss_module, "--loss-module")
    if problems:
        raise UsageError(problems[0])
    return plugins.load_configured()


def make_parser(config_cls: type[RunConfig] = RunConfig) -> argparse.ArgumentParser:
    """Every subcommand's parser; ``train`` has a flag per setting ``config_cls`` declares."""
    parser = Parser(prog="python -m lab", description="LossLens: train, list and inspect runs without the app.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        module = command(name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP, parents=[_loss_module_parser()])
        if name == "train":
            module.add_arguments(sub, config_cls)
        else:
            module.add_arguments(sub)
    return parser


def build_configs(args: argparse.Namespace, config_cls: type[RunConfig] = RunConfig) -> list[RunConfig]:
    """The experiment parsed ``train`` arguments ask for (see :mod:`lab.cli.commands.train`)."""
    return command("train").build_configs(args, config_cls)


def _quiet_stdout() -> None:
    """Point stdout at the null device: a reader that closed the pipe (``| head``) wants no more lines, and
    Python's flush at exit would otherwise report the broken pipe."""
    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture): nothing flushes it at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        for problem in load_loss_modules(argv):
            sys.stderr.write(f"warning: {problem}\n")
        args = make_parser().parse_args(argv)
        return command(args.command).run(args)
    except BrokenPipeError:  # the reader of stdout stopped reading (``| head``): not an error
        _quiet_stdout()
        return 0
    except (UsageError, ValueError, RunStoreError, DatasetError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    except OSError as err:  # a folder that cannot be used: say which and what to do, not a traceback
        sys.stderr.write(f"error: {describe_os_error(err)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130

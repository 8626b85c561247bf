"""``python -m lab``: LossLens without the app.

    python -m lab train --dataset digits --losses softmax,amc --feat-dim 2 --epochs 5
    python -m lab list
    python -m lab export RUN_ID --zip run.zip

Each subcommand is a module in ``lab/commands`` registered in :data:`COMMANDS`. Bad arguments and
expected failures (a bad setting, a missing dataset, an unreadable run, a runs folder that is a file,
read-only or full, an unreadable data folder) exit with status 2 and one ``error:`` line naming what to
change, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from lab.datasets import DatasetError
from lab.runstore import RunStoreError, describe_os_error
from lab.settings.config import RunConfig

# name -> module under lab/commands, in the order --help lists them
COMMANDS = {
    "train": "train",
    "list": "listing",
    "export": "export",
    "summary": "summary",
    "preset": "preset",
    "interpret": "interpret",
    "end": "end",
    "delete": "delete",
}


class UsageError(Exception):
    """A command-line mistake; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit; we want one line
        raise UsageError(message)


def command(name: str) -> Any:
    return importlib.import_module(f"lab.commands.{COMMANDS[name]}")


def make_parser(config_cls: type[RunConfig] = RunConfig) -> argparse.ArgumentParser:
    """Every subcommand's parser; ``train`` has a flag per setting ``config_cls`` declares."""
    parser = _Parser(prog="python -m lab", description="LossLens: train, list and inspect runs without the app.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        module = command(name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        if name == "train":
            module.add_arguments(sub, config_cls)
        else:
            module.add_arguments(sub)
    return parser


def build_configs(args: argparse.Namespace, config_cls: type[RunConfig] = RunConfig) -> list[RunConfig]:
    """The experiment parsed ``train`` arguments ask for (see :mod:`lab.commands.train`)."""
    return command("train").build_configs(args, config_cls)


def print_json(record: dict[str, Any]) -> None:
    """One JSON line on stdout. JSON has no NaN or infinity: such a number is printed as null, and a
    ``warning:`` line on stderr names each field it replaced."""
    replaced: list[str] = []
    line = json.dumps(_finite(record, "", replaced), allow_nan=False)
    for field in replaced:
        sys.stderr.write(f"warning: {field} is not a finite number; printed as null\n")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _finite(value: Any, where: str, replaced: list[str]) -> Any:
    """``value`` with every NaN or infinite float replaced by None, their places noted in ``replaced``."""
    if isinstance(value, float) and not math.isfinite(value):
        replaced.append(where or "the value")
        return None
    if isinstance(value, dict):
        return {key: _finite(item, f"{where}.{key}" if where else str(key), replaced) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{where}[{i}]", replaced) for i, item in enumerate(value)]
    return value


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
    try:
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

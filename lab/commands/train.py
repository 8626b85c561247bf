"""``python -m lab train``: one run per loss, a JSON line per finished run on stdout, a progress bar
on stderr after a ``warning:`` line for each setting a loss cannot meet in this feature dimension (the
warnings the app shows; training goes ahead). Its flags are the run settings declared in
``lab.config`` plus ``--losses``, ``--hparam`` and ``--runs-dir``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import losses
from lab import datasets
from lab.cli import UsageError, print_json
from lab.config import RunConfig, Setting, settings
from lab.device import resolve_device
from lab.experiment import make_experiment
from lab.runstore import RunStore
from lab.trainer import Progress, train_experiment

HELP = "train one run per loss and print a JSON line per run"


def _setting_help(declared: Setting) -> str:
    """The declaration's help with its allowed values, the default and what each choice is."""
    if declared.kind is bool:
        text = f"turn off: {declared.help}" if declared.default else declared.help
    else:
        facts = []
        if declared.kind is not str or declared.choices is not None or declared.path:
            facts.append(f"{declared.range_text()} {declared.unit}".strip())
        if declared.default not in (None, ""):
            facts.append(f"default: {declared.default}")
        text = f"{declared.help} ({'; '.join(facts)})" if facts else declared.help
    if declared.describe is not None:
        text += "".join(f". {choice}: {declared.describe(choice).rstrip('.')}" for choice in declared.allowed() or ())
    return text.replace("%", "%%")  # argparse formats help with %


def _metavar(declared: Setting) -> str:
    if declared.path:
        return "DIR"
    return {int: "N", float: "X"}.get(declared.kind, "NAME" if declared.choices is not None else "TEXT")


def _add_setting_flags(parser: argparse.ArgumentParser, config_cls: type[RunConfig] = RunConfig) -> None:
    """One flag per declared setting that has one; each stores under the setting's name. Values are
    checked by the config's validation, so every bad value gets the same message as everywhere else."""
    for declared in settings(config_cls):
        if declared.flag is None:
            continue
        if declared.kind is bool:
            action = "store_false" if declared.default else "store_true"
            parser.add_argument(declared.flag, dest=declared.name, action=action, help=_setting_help(declared))
        else:
            parser.add_argument(
                declared.flag,
                dest=declared.name,
                default=declared.default,
                type=declared.kind if declared.kind in (int, float) else str,
                metavar=_metavar(declared),
                help=_setting_help(declared),
            )


def add_arguments(parser: argparse.ArgumentParser, config_cls: type[RunConfig] = RunConfig) -> None:
    parser.add_argument(
        "--losses", default="softmax", help=f"comma-separated, from {', '.join(losses.names())} (default: softmax)"
    )
    parser.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="LOSS.NAME=VALUE",
        help="a loss hyperparameter, e.g. amc.margin=0.4 (repeatable)",
    )
    _add_setting_flags(parser, config_cls)
    parser.add_argument("--runs-dir", default="runs", help="where run folders are written (default: runs)")


def parse_hparams(items: Sequence[str], loss_names: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["amc.margin=0.4"]`` to ``{"amc": {"margin": "0.4"}}``; values are validated by the loss."""
    parsed: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        loss, dot, name = key.strip().partition(".")
        if not sep or not dot or not loss or not name or not value.strip():
            raise UsageError(f"--hparam {item!r}: write it as LOSS.NAME=VALUE, e.g. amc.margin=0.4")
        if loss not in loss_names:
            raise UsageError(f"--hparam {item!r}: loss {loss!r} is not in --losses ({', '.join(loss_names)})")
        parsed.setdefault(loss, {})[name] = value.strip()
    return parsed


def build_configs(args: argparse.Namespace, config_cls: type[RunConfig] = RunConfig) -> list[RunConfig]:
    """The experiment the parsed ``train`` arguments ask for: one validated config per loss."""
    loss_names = [name.strip() for name in args.losses.split(",") if name.strip()]
    if not loss_names:
        raise UsageError("--losses: name at least one loss")
    values = {declared.name: getattr(args, declared.name) for declared in settings(config_cls) if declared.flag}
    return make_experiment(config_cls(**values), loss_names, parse_hparams(args.hparam, loss_names))


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most ten times a second; when stderr is not a
    terminal (a log file), one line per epoch instead."""

    def __init__(self, stream: Any = sys.stderr) -> None:
        self.stream = stream
        self.last_draw = 0.0
        self.interactive = stream.isatty()

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        epoch_or_end = progress.status is not None or progress.metrics is not None
        if not epoch_or_end and (not self.interactive or now - self.last_draw < 0.1):
            return
        self.last_draw = now
        width = 30
        filled = int(width * progress.fraction)
        label = f"[{progress.run_index + 1}/{progress.n_runs}] {progress.loss:<10}"
        detail = f"epoch {progress.epoch}/{progress.epochs}"
        if progress.metrics is not None:
            detail += f"  test acc {progress.metrics['test_acc']:.3f}"
        if progress.status is not None:
            detail = f"{progress.status} {progress.message}".strip()
        line = f"{label} |{'#' * filled}{'.' * (width - filled)}| {detail}"
        if self.interactive:
            end = "\n" if progress.status is not None else ""
            self.stream.write(f"\r{line}\033[K{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    store = RunStore(args.runs_dir)
    configs = build_configs(args)
    resolve_device(args.device)
    for config in configs:
        n_classes = datasets.info(config.dataset).n_classes
        for warning in losses.warnings_for(config.loss, config.feat_dim, n_classes, config.loss_params):
            sys.stderr.write(f"warning: {config.loss}: {warning}\n")
    bar = ProgressBar()

    def on_progress(progress: Progress) -> None:
        bar(progress)
        if progress.status is not None:  # a run ended: print its line now, not at the very end
            print_json(store.load(progress.run_id).summary())

    records = train_experiment(configs, store, on_progress=on_progress)
    return 0 if all(r.state == "finished" for r in records) else 1

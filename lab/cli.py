"""``python -m lab``: train runs and list them from the command line.

    python -m lab train --dataset digits --losses softmax,amc --feat-dim 2 --epochs 5
    python -m lab list

``train`` prints one JSON object per finished run on stdout (one per line) and a progress bar on
stderr, after a ``warning:`` line for each setting a loss cannot meet in this feature dimension
(the warnings the app shows; training goes ahead). Bad arguments exit with status 2 and one
readable line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import losses
import models
from lab.config import DATASETS, DEVICES, LIMITS, OPTIMIZERS, RunConfig, one_config_per_loss
from lab.data import DATASET_CLASSES, DatasetError
from lab.device import resolve_device
from lab.runstore import RunStore, RunStoreError
from lab.trainer import Progress, train_experiment

DEFAULTS = RunConfig()


class UsageError(Exception):
    """A command-line mistake; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit; we want one line
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lab", description="LossLens: train and list runs without the app.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train one run per loss and print a JSON line per run")
    train.add_argument("--dataset", default=DEFAULTS.dataset, help=f"one of {', '.join(DATASETS)}")
    train.add_argument("--data-root", default=None, help="folder holding a local copy of the dataset")
    train.add_argument("--model", default=DEFAULTS.model, help=f"one of {', '.join(models.names())}")
    train.add_argument(
        "--feat-dim", default=DEFAULTS.feat_dim, type=int, help=f"feature dimension, 2 to {LIMITS.max_feat_dim}"
    )
    train.add_argument("--losses", default="softmax", help=f"comma-separated, from {', '.join(losses.names())}")
    train.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="LOSS.NAME=VALUE",
        help="a loss hyperparameter, e.g. amc.margin=0.4 (repeatable)",
    )
    train.add_argument("--epochs", default=DEFAULTS.epochs, type=int, help=f"1 to {LIMITS.max_epochs}")
    train.add_argument("--batch-size", default=DEFAULTS.batch_size, type=int, help=f"2 to {LIMITS.max_batch_size}")
    train.add_argument("--optimizer", default=DEFAULTS.optimizer, help=f"one of {', '.join(OPTIMIZERS)}")
    train.add_argument("--lr", default=DEFAULTS.lr, type=float, help="peak learning rate of the one-cycle schedule")
    train.add_argument("--weight-decay", default=DEFAULTS.weight_decay, type=float)
    train.add_argument(
        "--train-limit", default=DEFAULTS.train_limit, type=int, help="train on this many images (0: all)"
    )
    train.add_argument("--seed", default=DEFAULTS.seed, type=int)
    train.add_argument("--device", default=DEFAULTS.device, help=f"one of {', '.join(DEVICES)}")
    train.add_argument(
        "--no-channels-last",
        action="store_true",
        help="train in the NCHW memory layout instead of channels-last (bench/RESULTS.md compares them)",
    )
    train.add_argument("--runs-dir", default="runs", help="where run folders are written (default: runs)")
    train.add_argument("--experiment", default="", help="name of this group of runs (default: time, dataset, dim)")
    listing = commands.add_parser("list", help="print every run as a JSON line")
    listing.add_argument("--runs-dir", default="runs")
    return parser


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


def build_configs(args: argparse.Namespace) -> list[RunConfig]:
    loss_names = [name.strip() for name in args.losses.split(",") if name.strip()]
    if not loss_names:
        raise UsageError("--losses: name at least one loss")
    experiment = args.experiment or f"{time.strftime('%Y%m%d-%H%M%S')}-{args.dataset}-{args.feat_dim}d"
    template = RunConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        model=args.model,
        feat_dim=args.feat_dim,
        train_limit=args.train_limit,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=args.device,
        channels_last=not args.no_channels_last,
        experiment=experiment,
    )
    return one_config_per_loss(template, loss_names, parse_hparams(args.hparam, loss_names))


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


def _print_json(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        store = RunStore(args.runs_dir)
        if args.command == "list":
            for record in store.list():
                _print_json(record.summary())
            return 0
        configs = build_configs(args)
        resolve_device(args.device)
        for config in configs:
            n_classes = DATASET_CLASSES[config.dataset]
            for warning in losses.warnings_for(config.loss, config.feat_dim, n_classes, config.loss_params):
                sys.stderr.write(f"warning: {config.loss}: {warning}\n")
        bar = ProgressBar()

        def on_progress(progress: Progress) -> None:
            bar(progress)
            if progress.status is not None:  # a run ended: print its line now, not at the very end
                _print_json(store.load(progress.run_id).summary())

        records = train_experiment(configs, store, on_progress=on_progress)
        return 0 if all(r.state == "finished" for r in records) else 1
    except (UsageError, ValueError, RunStoreError, DatasetError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130

"""``python -m lab train``: every variant with every seed, a JSON line per finished run on stdout (with
its ``variant`` and ``seed``), a progress bar on stderr after a ``warning:`` line for each setting a loss
cannot meet in this feature dimension (the warnings the app shows; training goes ahead). Its flags are
the run settings declared in ``lab.settings.config`` plus ``--losses`` (variants: ``NAME`` or
``NAME:key=value:key=value``), ``--hparam``, ``--seeds``, ``--runs-dir`` and the backend's: ``--backend
local|ray``, ``--ray-address``, ``--cpus-per-run``, ``--gpus-per-run``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Collection, Sequence
from typing import Any, TextIO

import losses
from lab import datasets
from lab.cli.common import ProgressBar, UsageError
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.config import RunConfig, Setting, settings
from lab.settings.device import resolve_device
from lab.settings.experiment import make_experiment, parse_seeds, parse_variants, variant_label
from lab.training.backends import make_backend
from lab.training.backends.base import BACKENDS, RAY_ADDRESS_ENV, Backend
from lab.training.loop import TrainingProgress
from losses import pml

HELP = "train every variant (a loss and its settings) with every seed and print a JSON line per run"


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


def add_setting_flags(
    parser: argparse.ArgumentParser, config_cls: type[RunConfig] = RunConfig, names: Collection[str] | None = None
) -> None:
    """One flag per declared setting that has one (of those in ``names``, when given); each stores under the
    setting's name. Values are checked by the config's validation, so every bad value gets the same message
    as everywhere else."""
    for declared in settings(config_cls):
        if declared.flag is None or (names is not None and declared.name not in names):
            continue
        if declared.kind is bool:
            action = "store_false" if declared.default else "store_true"
            parser.add_argument(declared.flag, dest=declared.name, action=action, help=_setting_help(declared))
        else:
            parser.add_argument(
                declared.flag,
                dest=declared.name,
                default=declared.default,
                type=declared.read,
                metavar=_metavar(declared),
                help=_setting_help(declared),
            )


def add_arguments(parser: argparse.ArgumentParser, config_cls: type[RunConfig] = RunConfig) -> None:
    parser.add_argument(
        "--losses",
        default="softmax",
        metavar="VARIANTS",
        help=(
            "comma-separated variants, each a loss NAME or NAME:key=value:key=value with its own "
            "hyperparameters; a loss may appear several times with different settings, e.g. "
            f"softmax,lsoftmax:margin=2,lsoftmax:margin=4. Losses: {', '.join(losses.names())} (default: softmax); "
            f"your own with --loss-module; {_adapted_losses()}"
        ),
    )
    parser.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="LOSS.NAME=VALUE",
        help="a loss hyperparameter for every variant of the loss, e.g. amc.margin=0.4 (repeatable)",
    )
    parser.add_argument(
        "--seeds",
        default="",
        metavar="LIST",
        help="comma-separated seeds, e.g. 0,1,2: every variant trains once per seed (default: --seed)",
    )
    add_setting_flags(parser, config_cls)
    add_destination_arguments(parser)


def _adapted_losses() -> str:
    """pytorch-metric-learning's losses as ``--losses`` names them, or how to add them."""
    if not pml.installed():
        return pml.how_to_add()
    return f"pytorch-metric-learning's as pml:CLASS:key=value ({', '.join(pml.CLASSES)})"


def add_destination_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the runs go: the folder their files are written to, and where they train, this process or a Ray
    cluster (``train`` and ``preset`` take these)."""
    parser.add_argument("--runs-dir", default="runs", help="where run folders are written (default: runs)")
    parser.add_argument(
        "--backend",
        default="local",
        choices=BACKENDS,
        help="local: one run after another in this process (default); ray: one Ray task per run",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help=f"the Ray cluster (HOST:PORT, ray://HOST:PORT or auto; default ${RAY_ADDRESS_ENV}); "
        "none: start a local Ray for the sweep and shut it down at the end",
    )
    parser.add_argument(
        "--cpus-per-run", type=float, default=1.0, metavar="N", help="CPUs each Ray task asks for (default: 1)"
    )
    parser.add_argument(
        "--gpus-per-run",
        type=float,
        default=None,
        metavar="X",
        help="GPUs each Ray task asks for when the device is cuda or auto and the cluster has GPUs; "
        "0.25 packs four small CNNs on one GPU (default: 1)",
    )


def backend_from(args: argparse.Namespace) -> Backend:
    """The backend the parsed ``--backend`` flags ask for; the Ray options only with ``--backend ray``."""
    if args.backend != "ray":
        ray_only = [
            flag
            for flag, value in (("--ray-address", args.ray_address), ("--gpus-per-run", args.gpus_per_run))
            if value is not None
        ]
        if ray_only or args.cpus_per_run != 1.0:
            raise UsageError(f"{(ray_only or ['--cpus-per-run'])[0]} needs --backend ray")
        return make_backend("local")
    return make_backend("ray", args.ray_address, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run)


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
    """The experiment the parsed ``train`` arguments ask for: one validated config per variant and seed."""
    variants = parse_variants(args.losses)
    if not variants:
        raise UsageError("--losses: name at least one loss")
    loss_names = list(dict.fromkeys(variant.loss for variant in variants))
    values = {declared.name: getattr(args, declared.name) for declared in settings(config_cls) if declared.flag}
    seeds = parse_seeds(args.seeds) if args.seeds.strip() else None
    return make_experiment(config_cls(**values), variants, parse_hparams(args.hparam, loss_names), seeds)


def run_line(record: RunRecord) -> dict[str, Any]:
    """The JSON line printed for a run: its summary with its variant and seed."""
    config = record.config
    return {
        **record.summary(),
        "variant": variant_label(config) if config else None,
        "seed": config.seed if config else None,
    }


class TrainingBar(ProgressBar):
    """The training's progress line: run ``i/n``, its name (``names`` by run index, else the loss), the epoch
    and the last test accuracy; each epoch and each run's end is a milestone."""

    def __init__(self, stream: TextIO | None = None, names: Sequence[str] = ()) -> None:
        super().__init__(stream)
        self.names = list(names)

    def __call__(self, progress: TrainingProgress) -> None:
        name = self.names[progress.run_index] if progress.run_index < len(self.names) else progress.loss
        detail = f"epoch {progress.epoch}/{progress.epochs}"
        if progress.metrics is not None:
            detail += f"  test acc {progress.metrics['test_acc']:.3f}"
        if progress.status is not None:
            detail = f"{progress.status} {progress.message}".strip()
        self.draw(
            progress.fraction,
            f"[{progress.run_index + 1}/{progress.n_runs}] {name:<10}",
            detail,
            milestone=progress.status is not None or progress.metrics is not None,
            last=progress.status is not None,
        )


def run(args: argparse.Namespace) -> int:
    return train_and_print(build_configs(args), args)


def train_and_print(configs: Sequence[RunConfig], args: argparse.Namespace) -> int:
    """Train ``configs`` on the backend ``args`` ask for, printing each run's JSON line as it ends; 0 when
    every run finished. A Ray cluster that cannot be reached is an error before anything trains."""
    store = RunStore(args.runs_dir)
    backend = backend_from(args)
    if args.backend == "local":  # a Ray worker checks its own devices
        for device in {config.device for config in configs}:
            resolve_device(device)
    variants: dict[str, RunConfig] = {}  # each variant's first run: its warnings hold for every seed
    for config in configs:
        variants.setdefault(config.variant, config)
    concerned: dict[tuple[str, str], list[str]] = {}  # (loss, warning) -> the variants it concerns
    for variant, config in variants.items():
        n_classes = datasets.info(config.dataset).n_classes
        for warning in losses.warnings_for(config.loss, config.feat_dim, n_classes, config.loss_params):
            concerned.setdefault((config.loss, warning), []).append(variant)
    for (loss, warning), names in concerned.items():
        several = sum(config.loss == loss for config in variants.values()) > 1
        who = f"{loss} ({', '.join(names)})" if several else loss
        sys.stderr.write(f"warning: {who}: {warning}\n")
    bar = TrainingBar(names=[f"{variant_label(c)} seed {c.seed}" for c in configs])
    out = sys.stdout  # the JSON lines' stream, kept apart from what Ray's driver prints (below)

    def on_progress(progress: TrainingProgress) -> None:
        bar(progress)
        if progress.status is not None:  # a run ended: print its line now, not at the very end
            out.write(json.dumps(run_line(store.load(progress.run_id))) + "\n")
            out.flush()

    # Ray prints its cluster's messages ("a worker died ...") to sys.stdout: send them to stderr instead
    with contextlib.redirect_stdout(sys.stderr), backend:
        records = backend.run(configs, store, on_progress=on_progress)
    return 0 if len(records) == len(configs) and all(r.state == "finished" for r in records) else 1

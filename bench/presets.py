"""Presets: how long each paper experiment (lab.settings.presets) takes, and whether it shows the paper's picture.

    python -m bench.presets                            # every preset, as `python -m lab preset NAME` trains it
    python -m bench.presets --presets lsoftmax-fig2    # some of them
    python -m bench.presets --quick                    # each preset on 300 digits for 1 epoch (CI)
    python -m bench.presets --extrapolate --threads 1  # 1 epoch each, scaled up to the declared epochs

``--extrapolate`` is for a machine too busy to train every preset in full: each preset trains its real
runs on its real data for one epoch, and the first preset also for two; the second epoch's cost per
training image (which includes that epoch's evaluation and snapshot) scales each preset's one-epoch time
up to its declared epochs: ``time(1 epoch) + (epochs - 1) x cost per image x runs x training images``.
A small training first takes the one-time costs (imports, first calls) out of the epochs compared.
``--threads 1`` makes the CPU seconds mean the same on a shared machine: with two threads and another
process on a core, OpenMP's spin-waiting burns CPU time for nothing (bench/RESULTS.md).

Each preset trains on the local backend (the command line's default) into a temporary runs folder, one
after another in this process; the figures are its wall-clock and CPU seconds (this process's user plus
system time: on a machine shared with other work the wall clock stretches, the CPU time much less). A
fresh ``python -m lab`` adds its start-up (imports, reading the dataset) once.

Then the preset's summary (lab.analysis.seed_stats): per variant, test accuracy, mean within-class angle and
minimum between-class angle, and the within-class spread relative to the distance between class
centers (mean distance of a feature to its class's mean over the mean distance between two class
means), which is what center loss shrinks: the table is where to check that the rays narrow with m
(lsoftmax-fig2) and the clusters tighten with lambda (center-lambda).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import Report, parser, resolve, torch_threads
from lab.analysis.seed_stats import summarize_experiment
from lab.runs.store import RunStore
from lab.settings import presets
from lab.training.backends import make_backend

QUICK = {"dataset": "digits", "epochs": 1, "train_limit": 300}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def relative_spread(store: RunStore, run_id: str) -> float:
    """Mean distance of a test feature to its class mean over the mean distance between two class means."""
    features = store.load_features(run_id)
    x = features.test_features.double().numpy()
    y = features.test_labels.numpy()
    classes = np.unique(y)
    means = np.stack([x[y == k].mean(0) for k in classes])
    within = np.linalg.norm(x - means[np.searchsorted(classes, y)], axis=1).mean()
    gaps = np.linalg.norm(means[:, None] - means[None], axis=2)[np.triu_indices(len(classes), 1)]
    return float(within / gaps.mean())


def train_preset(preset: presets.Preset, store: RunStore, **override: int | str) -> tuple[list, float, float]:
    """The preset's runs trained as the command line trains them (settings in ``override`` replaced), and
    the wall-clock and CPU seconds they took."""
    configs = [config.replace(**override) for config in preset.configs()]
    wall, cpu = time.perf_counter(), cpu_seconds()
    with make_backend("local") as backend:
        records = backend.run(configs, store)
    return records, time.perf_counter() - wall, cpu_seconds() - cpu


def training_images(records: list) -> int:
    """Images the runs trained on per epoch, all runs together."""
    return sum(record.config.train_limit for record in records)


def main(argv: list[str] | None = None) -> Report:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--presets", default=",".join(presets.names()), help="comma-separated (default: all)")
    options.add_argument(
        "--extrapolate", action="store_true", help="one epoch per preset (two for the first), scaled up; see above"
    )
    options.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    options.add_argument("--epochs", type=int, default=0, help="train every preset this many epochs (default: its own)")
    args = options.parse_args(argv)
    chosen = [presets.get(name.strip()) for name in args.presets.split(",") if name.strip()]
    with torch_threads(args.threads or torch.get_num_threads()):
        return _measure(args, chosen)


def _measure(args: argparse.Namespace, chosen: list[presets.Preset]) -> Report:
    if args.quick:
        mode = "each on 300 digits for 1 epoch"
    elif args.extrapolate:
        mode = f"each for 1 epoch (and {chosen[0].name} for 2), scaled up to its declared epochs"
    elif args.epochs:
        mode = f"{args.epochs} epochs each"
    else:
        mode = "as declared"
    report = Report(
        "presets", args, resolve("cpu"), f"local backend, device auto, {torch.get_num_threads()} torch threads; {mode}"
    )
    rows = []
    per_image: tuple[float, float] | None = None  # (wall, cpu) seconds per training image of an epoch after the first
    with tempfile.TemporaryDirectory(prefix="losslens-presets-") as folder:
        store = RunStore(Path(folder))
        if args.extrapolate:  # the first training in a process pays one-time costs: not in the epochs compared
            train_preset(chosen[0], store, **QUICK)
        for preset in chosen:
            override: dict[str, int | str] = dict(QUICK) if args.quick else {"epochs": 1} if args.extrapolate else {}
            if args.epochs and not args.extrapolate:
                override["epochs"] = args.epochs
            records, wall, cpu = train_preset(preset, store, **override)
            finished = sum(record.state == "finished" for record in records)
            note = f"{len(records)} runs on {records[0].config.dataset}, {finished} finished"
            if not args.extrapolate:
                report.figure(f"{preset.name}/seconds", wall, "s", note=note)
                report.figure(f"{preset.name}/cpu_seconds", cpu, "s")
            else:
                report.figure(f"{preset.name}/seconds_1_epoch", wall, "s", note=note)
                report.figure(f"{preset.name}/cpu_seconds_1_epoch", cpu, "s")
                if per_image is None:
                    _, wall_2, cpu_2 = train_preset(preset, store, **{**override, "epochs": 2})
                    images = training_images(records)
                    per_image = ((wall_2 - wall) / images, (cpu_2 - cpu) / images)
                    report.figure(f"{preset.name}/seconds_2_epochs", wall_2, "s")
                    report.figure(f"{preset.name}/cpu_seconds_2_epochs", cpu_2, "s")
                    report.figure("per_training_image", 1000 * per_image[0], "ms", note="an epoch after the first")
                    report.figure("cpu_per_training_image", 1000 * per_image[1], "ms")
                more = (preset.epochs - 1) * training_images(records)
                estimate = f"{preset.epochs} epochs, extrapolated"
                report.figure(f"{preset.name}/seconds", wall + more * per_image[0], "s", note=estimate)
                report.figure(f"{preset.name}/cpu_seconds", cpu + more * per_image[1], "s", note=estimate)
            spreads: dict[str, list[float]] = {}
            for record in records:
                if record.state == "finished":
                    spreads.setdefault(record.config.variant, []).append(relative_spread(store, record.run_id))
            for summary in summarize_experiment(store, records[0].config.experiment):
                stats = summary.stats
                rows.append(
                    [
                        preset.name,
                        summary.variant,
                        str(summary.n),
                        f"{stats['test_acc'].mean:.3f}" if stats else "-",
                        f"{stats['mean_within_class_angle'].mean:.1f}" if stats else "-",
                        f"{stats['min_between_class_angle'].mean:.1f}" if stats else "-",
                        f"{np.mean(spreads[summary.variant]):.3f}" if summary.variant in spreads else "-",
                    ]
                )
    after = " after 1 epoch: not the presets' pictures" if args.extrapolate or args.quick else ""
    report.table(
        f"each preset's variants (means over its seeds){after}",
        ["preset", "variant", "seeds", "test accuracy", "within-class angle °", "min between-class angle °", "spread"],
        rows,
    )
    report.write()
    return report


if __name__ == "__main__":
    main()

"""Presets: how long each of the papers' experiments (lab.presets) takes, and whether it shows the paper's picture.

    python -m bench.presets                            # every preset, as `python -m lab preset NAME` trains it
    python -m bench.presets --presets lsoftmax-fig2    # some of them
    python -m bench.presets --quick                    # each preset on 300 digits for 1 epoch (CI)

Each preset trains on the local backend (the command line's default) into a temporary runs folder, one
after another in this process; the figures are its wall-clock and CPU seconds (this process's user plus
system time: on a machine shared with other work the wall clock stretches, the CPU time much less). A
fresh ``python -m lab`` adds its start-up (imports, reading the dataset) once.

Then the preset's summary (lab.summary): per variant, test accuracy, mean within-class angle and
minimum between-class angle, and the within-class spread relative to the distance between class
centers (mean distance of a feature to its class's mean over the mean distance between two class
means), which is what center loss shrinks: the table is where to check that the rays narrow with m
(lsoftmax-fig2) and the clusters tighten with lambda (center-lambda).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Report, parser, resolve
from lab import presets
from lab.backends import make_backend
from lab.runstore import RunStore
from lab.summary import summarize_experiment

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


def main(argv: list[str] | None = None) -> Report:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--presets", default=",".join(presets.names()), help="comma-separated (default: all)")
    args = options.parse_args(argv)
    chosen = [presets.get(name.strip()) for name in args.presets.split(",") if name.strip()]
    report = Report(
        "presets",
        args,
        resolve("cpu"),
        "local backend, device auto; " + ("each on 300 digits for 1 epoch" if args.quick else "as declared"),
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="losslens-presets-") as folder:
        store = RunStore(Path(folder))
        for preset in chosen:
            configs = preset.configs()
            if args.quick:
                configs = [config.replace(**QUICK) for config in configs]
            wall, cpu = time.perf_counter(), cpu_seconds()
            with make_backend("local") as backend:
                records = backend.run(configs, store)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            finished = sum(record.state == "finished" for record in records)
            note = f"{len(configs)} runs on {configs[0].dataset}, {finished} finished"
            report.figure(f"{preset.name}/seconds", wall, "s", note=note)
            report.figure(f"{preset.name}/cpu_seconds", cpu, "s")
            spreads: dict[str, list[float]] = {}
            for record in records:
                if record.state == "finished":
                    spreads.setdefault(record.config.variant, []).append(relative_spread(store, record.run_id))
            for summary in summarize_experiment(store, configs[0].experiment):
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
    report.table(
        "each preset's variants (means over its seeds)",
        ["preset", "variant", "seeds", "test accuracy", "within-class angle °", "min between-class angle °", "spread"],
        rows,
    )
    report.write()
    return report


if __name__ == "__main__":
    main()

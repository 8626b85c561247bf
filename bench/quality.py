"""Quality: what each loss does to the features, and the check that every default trains.

    python -m bench.quality                  # every loss, 2-D and 3-D, 3 seeds, on digits and Fashion-MNIST
    python -m bench.quality --quick          # two losses, 1 seed, digits, 1 epoch (CI)
    python -m bench.quality --datasets digits --seeds 5
    python -m bench.quality --losses softmax,amc --variant amc:pair_labels=prediction

For every registered loss (with its default hyperparameters), feature dimension and seed, one run
with the default settings except the dataset; on the 28x28 datasets the runs train on a fixed
subset of ``--train-limit`` images (8,000 by default, so that the whole table fits in well under an
hour on two CPU cores) and test on the full test set. All rows train for the same, default, number
of epochs. Reported per row and dimension, over seeds: test accuracy (mean and standard
deviation), mean within-class angle and minimum between-class angle (degrees, from
``lab.analysis.geometry.summary``: angle of a test feature to its class's mean direction, and the smallest
angle between two classes' mean directions). A run that diverges or fails is counted and shown; its
seed is left out of the means.

Each table also has a reference row, ``softmax-no-bias``: L-Softmax with m = 1 and no annealing,
which is exactly cross-entropy on bias-free logits W f. L-Softmax, SphereFace, CosFace and ArcFace
have no bias either, so in 2-D they classify by the feature's angle alone; the reference row
separates what the missing bias costs from what each margin costs (``--no-reference`` drops it).
``--variant LOSS:NAME=VALUE[,NAME=VALUE]`` adds a row for a loss with other hyperparameters.
"""

from __future__ import annotations

import dataclasses
import tempfile

import numpy as np

import losses
from bench.common import Report, median, parser, resolve, spread
from lab.analysis import geometry
from lab.datasets import DatasetError, load_dataset
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.training.loop import train_experiment

# Rows that are not a registered loss with its defaults: label -> (loss, hyperparameters).
REFERENCE_ROWS: dict[str, tuple[str, dict[str, object]]] = {
    "softmax-no-bias": ("lsoftmax", {"margin": 1, "base": 0.0, "lambda_min": 0.0}),
}
SMALL_DATASETS = ("digits",)  # trained on in full; the others on a subset of --train-limit images


@dataclasses.dataclass
class Cell:
    accuracies: list[float] = dataclasses.field(default_factory=list)
    within: list[float] = dataclasses.field(default_factory=list)
    between: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


def parse_variant(text: str) -> tuple[str, tuple[str, dict[str, object]]]:
    """``LOSS:NAME=VALUE[,NAME=VALUE]`` as a row label and (loss, hyperparameters), validated."""
    loss, _, settings = text.partition(":")
    params: dict[str, object] = {}
    for item in filter(None, settings.split(",")):
        name, equals, value = item.partition("=")
        if not equals:
            raise SystemExit(f"--variant {text!r}: write it as LOSS:NAME=VALUE[,NAME=VALUE]")
        params[name.strip()] = value.strip()
    try:
        losses.make_params(loss, params)
    except losses.HparamError as err:
        raise SystemExit(f"--variant {text!r}: {err}") from None
    return text, (loss, params)


def evaluate(store: RunStore, record) -> tuple[float, float, float]:
    features = store.load_features(record.run_id)
    directions = features.class_directions
    numbers = geometry.summary(
        features.test_features.numpy(),
        features.test_labels.numpy(),
        features.test_logits.numpy(),
        None if directions is None else directions.numpy(),
    )
    return numbers["test_acc"], numbers["mean_within_class_angle"], numbers["min_between_class_angle"]


def table_rows(cells: dict[str, Cell], seeds: int) -> list[list[str]]:
    rows = []
    for label, cell in cells.items():
        problems = "; ".join(cell.problems)
        label = f"{label} (reference)" if label in REFERENCE_ROWS else label
        if not cell.accuracies:
            rows.append([label, "-", "-", "-", "-", f"0/{seeds} ({problems})"])
            continue
        rows.append(
            [
                label,
                f"{np.mean(cell.accuracies):.3f} ± {spread(cell.accuracies):.3f}",
                f"{np.mean(cell.within):.1f} ± {spread(cell.within):.1f}",
                f"{np.mean(cell.between):.1f} ± {spread(cell.between):.1f}",
                f"{median(cell.seconds):.1f}",
                f"{len(cell.accuracies)}/{seeds}" + (f" ({problems})" if problems else ""),
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> Report:
    parse = parser(__doc__.splitlines()[0])
    parse.add_argument("--datasets", default="digits,fashion-mnist", help="comma-separated (default %(default)s)")
    parse.add_argument("--losses", default="", help="comma-separated (default: every registered loss)")
    parse.add_argument("--dims", default="2,3", help="feature dimensions (default %(default)s)")
    parse.add_argument("--seeds", type=int, default=3, help="seeds per cell (default %(default)s)")
    parse.add_argument(
        "--train-limit",
        type=int,
        default=8000,
        help="training images on the 28x28 datasets, 0 for all (default %(default)s)",
    )
    parse.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LOSS:NAME=VALUE[,...]",
        help="an extra row: a loss with other hyperparameters (repeatable)",
    )
    parse.add_argument("--no-reference", action="store_true", help="leave out the softmax-no-bias row")
    args = parse.parse_args(argv)
    device = resolve(args.device)
    names = [n for n in args.losses.split(",") if n] or losses.names()
    datasets = [d for d in args.datasets.split(",") if d]
    dims = [int(d) for d in args.dims.split(",") if d]
    seeds = args.seeds
    if args.quick:
        names, datasets, dims, seeds = names[:2] if not args.losses else names, ["digits"], dims[:1], 1
    rows_to_train: dict[str, tuple[str, dict[str, object]]] = {name: (name, {}) for name in names}
    rows_to_train.update(parse_variant(text) for text in args.variant)
    if not args.no_reference:
        rows_to_train.update(REFERENCE_ROWS)
    epochs = 1 if args.quick else RunConfig().epochs
    report = Report(
        "quality",
        args,
        device,
        f"rows {', '.join(rows_to_train)}; dims {dims}; {seeds} seeds; datasets {', '.join(datasets)}; "
        f"{epochs} epochs (the default{', quick' if args.quick else ''}); 28x28 datasets on "
        f"{args.train_limit or 'all'} training images, full test set",
    )
    report.figures_in_markdown = False  # RESULTS.md gets the tables below instead of one line per figure
    store = RunStore(tempfile.mkdtemp(prefix="losslens-bench-"))
    for dataset in datasets:
        try:
            load_dataset(dataset)
        except DatasetError as err:
            report.note(f"{dataset}: skipped ({err})")
            continue
        base = RunConfig(dataset=dataset, device=args.device, epochs=epochs)
        if dataset not in SMALL_DATASETS:
            base = base.replace(train_limit=args.train_limit)
        for dim in dims:
            cells = {label: Cell() for label in rows_to_train}
            for seed in range(seeds):
                configs = [
                    base.replace(loss=loss, loss_params=params, feat_dim=dim, seed=seed, experiment=f"q-{dataset}")
                    for loss, params in rows_to_train.values()
                ]
                for label, record in zip(rows_to_train, train_experiment(configs, store), strict=True):
                    cell = cells[label]
                    if record.state != "finished":
                        cell.problems.append(f"seed {seed} {record.state}: {record.status.get('message', '')}")
                        continue
                    acc, within, between = evaluate(store, record)
                    cell.accuracies.append(acc)
                    cell.within.append(within)
                    cell.between.append(between)
                    cell.seconds.append(float(record.status.get("train_seconds", float("nan"))))
            report.table(
                f"{dataset}, {dim}-D features",
                ["loss", "test accuracy", "within-class angle °", "min between-class angle °", "train s", "seeds ok"],
                table_rows(cells, seeds),
            )
            for label, cell in cells.items():
                prefix = f"{dataset}/{dim}d/{label}"
                if not cell.accuracies:
                    report.figure(f"{prefix}/test_acc", "no finished run", note="; ".join(cell.problems))
                    continue
                report.figure(
                    f"{prefix}/test_acc",
                    f"{np.mean(cell.accuracies):.4f} ± {spread(cell.accuracies):.4f}",
                    note=f"{len(cell.accuracies)} seeds" + (f"; {'; '.join(cell.problems)}" if cell.problems else ""),
                )
                report.figure(f"{prefix}/within_deg", f"{np.mean(cell.within):.1f} ± {spread(cell.within):.1f}")
                report.figure(f"{prefix}/min_between_deg", f"{np.mean(cell.between):.1f} ± {spread(cell.between):.1f}")
                report.figure(f"{prefix}/train_seconds", median(cell.seconds), "s", note="median per run")
    report.write()
    return report


if __name__ == "__main__":
    main()

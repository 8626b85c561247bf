"""Lockstep training: an experiment's runs trained step by step together against the same runs one after
another and against one run alone.

    python -m bench.lockstep           # the five default losses on digits with the default settings
    python -m bench.lockstep --quick   # 1 epoch on 256 images (CI)

Three arms train with ``lab.training.loop.train_experiment`` on the same data, alternating, repeated (the median
of each arm is reported); the clock covers the whole experiment (model set-up, training, per-epoch
evaluation and the run files), as a user's Start does, with the dataset already loaded:

* ``one``: softmax alone, the reference;
* ``five_one_by_one``: the Train form's five default losses with ``lockstep=False``;
* ``five_lockstep``: the same five step by step together, as the CLI and the app train them.

The figures are each arm's seconds, the ratios of the five-loss arms to ``one`` measured side by side, and
whether each lockstep run's weights and final test accuracy equal the same run's trained one by one, bit
for bit (``runs_identical``: 1 when all are).
"""

from __future__ import annotations

import tempfile
import time

import torch

from bench.common import Report, median, parser, resolve
from lab.datasets import load_dataset
from lab.runs.record import RunRecord
from lab.runs.store import RunStore
from lab.settings.config import RunConfig
from lab.settings.experiment import make_experiment
from lab.training.loop import train_experiment
from lab.training.optimizer import warm_up

DEFAULT_LOSSES = ("softmax", "lsoftmax", "amc", "opl", "lmd")  # the Train form's (lab.settings.form.DEFAULT_LOSSES)


def experiment_seconds(configs: list[RunConfig], lockstep: bool) -> tuple[float, list[RunRecord], list[dict]]:
    """Seconds to train ``configs`` as one experiment into a fresh runs folder, the records and the weights."""
    with tempfile.TemporaryDirectory(prefix="losslens-bench-") as root:
        store = RunStore(root)
        started = time.perf_counter()
        records = train_experiment(configs, store, lockstep=lockstep)
        seconds = time.perf_counter() - started
        failed = [(r.config.loss, r.state) for r in records if r.state != "finished"]
        if failed:
            raise RuntimeError(f"runs did not finish: {failed}")
        weights = [store.load_weights(r.run_id) for r in records]
    return seconds, records, weights


def identical(first: list[dict], second: list[dict]) -> bool:
    """Whether two lists of runs' weights are equal tensor by tensor, bit for bit."""
    return all(
        a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
        for a, b in zip(first, second, strict=True)
    )


def main(argv: list[str] | None = None) -> Report:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    device = resolve(args.device)
    template = RunConfig(experiment="bench-lockstep", device=args.device)
    if args.quick:
        template = template.replace(epochs=1, train_limit=256)
    repeats = 1 if args.quick else 3
    report = Report(
        "lockstep",
        args,
        device,
        f"digits, {template.model}, {template.epochs} epochs, batch {template.batch_size}"
        + (f", {template.train_limit} training images" if template.train_limit else "")
        + f"; losses {', '.join(DEFAULT_LOSSES)}; {repeats} alternating repetitions, median",
    )
    load_dataset(template.dataset)  # read once: the arms time training, not the disk
    warm_up()
    five = make_experiment(template, DEFAULT_LOSSES)
    arms = {"one": (five[:1], False), "five_one_by_one": (five, False), "five_lockstep": (five, True)}
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    results: dict[str, tuple[list[RunRecord], list[dict]]] = {}
    for _ in range(repeats):
        for name, (configs, lockstep) in arms.items():
            took, records, weights = experiment_seconds(configs, lockstep)
            seconds[name].append(took)
            results[name] = records, weights
    for name in arms:
        report.figure(name, median(seconds[name]), "s", note=", ".join(f"{s:.2f}" for s in seconds[name]))
    one = median(seconds["one"])
    report.figure("five_one_by_one_over_one", median(seconds["five_one_by_one"]) / one, "x")
    report.figure("five_lockstep_over_one", median(seconds["five_lockstep"]) / one, "x")
    (alone, alone_weights), (together, together_weights) = results["five_one_by_one"], results["five_lockstep"]
    same_accuracy = all(a.status["test_acc"] == b.status["test_acc"] for a, b in zip(alone, together, strict=True))
    same = same_accuracy and identical(alone_weights, together_weights)
    report.figure(
        "runs_identical", float(same), "", target="1", met=same, note="weights and test accuracy, bit for bit"
    )
    report.write()
    return report


if __name__ == "__main__":
    main()
